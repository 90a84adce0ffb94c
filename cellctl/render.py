"""Write Results for people (tables like nova-manage's) and for scripts (JSON, CSV).

The one place that decides what reaches stdout and stderr, and the one place
that masks passwords in output.
"""

from __future__ import annotations

import csv
import datetime
import json
import sys
from typing import IO, Any

from cellctl.result import Column, Message, Result, Table
from cellctl.urls import mask

FORMATS = ("table", "json", "csv")


def render(result: Result, fmt: str, *, show_secrets: bool = False,
           out: IO[str] | None = None, err: IO[str] | None = None,
           width: int | None = None) -> None:
    """``width``: wrap a table's widest cells to fit (a terminal); None: never wrap."""
    out = out or sys.stdout
    err = err or sys.stderr
    table = _masked(result.table, show_secrets) if result.table is not None else None
    for message in result.messages:
        _message(message, fmt, out, err)
    if result.unreachable_cells and fmt == "json":
        _json_line(err, {"level": "warning", "message": "Some cells could not be reached",
                         "unreachable_cells": result.unreachable_cells})
    if fmt == "json":
        _json(result, table, out)
    elif fmt == "csv":
        _csv(result, table, out)
    elif table is not None:
        out.write(_pretty(table, width) + "\n")


def error_line(text: str, fmt: str, err: IO[str] | None = None) -> None:
    """An error that ended a command before it produced a Result."""
    _message(Message("error", text), fmt, sys.stdout, err or sys.stderr)


def _message(message: Message, fmt: str, out: IO[str], err: IO[str]) -> None:
    if fmt == "json":
        _json_line(err, {"level": message.level, "message": message.text})
    elif message.level == "info" and fmt == "table":
        out.write(message.text + "\n")
    else:
        prefix = {"info": "", "warning": "WARNING: ", "error": "ERROR: "}[message.level]
        err.write(prefix + message.text + "\n")


def _json_line(stream: IO[str], obj: dict[str, Any]) -> None:
    stream.write(json.dumps(obj, default=_json_default) + "\n")


def _json(result: Result, table: Table | None, out: IO[str]) -> None:
    # A result with both shows its table to people and its data to scripts.
    if result.data is not None:
        payload: Any = {**result.data, "exit_code": result.code}
        if result.unreachable_cells:
            payload["unreachable_cells"] = result.unreachable_cells
    elif table is not None:
        payload = table.rows
    else:
        return
    # Streamed in 64 KiB pieces: a listing of 100,000 rows is never held as one
    # string as well, and not written a token at a time either.
    pieces: list[str] = []
    size = 0
    for piece in json.JSONEncoder(indent=2, default=_json_default).iterencode(payload):
        pieces.append(piece)
        size += len(piece)
        if size >= 65536:
            out.write("".join(pieces))
            pieces, size = [], 0
    out.write("".join(pieces) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value)


def _csv(result: Result, table: Table | None, out: IO[str]) -> None:
    if table is not None:
        keys = [c.key for c in table.columns]
        rows = table.rows
    elif result.data is not None:
        keys = list(result.data)
        rows = [result.data]
    else:
        return
    writer = csv.DictWriter(out, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in keys})


def _csv_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return "" if value is None else value


def _masked(table: Table, show_secrets: bool) -> Table:
    secret = [c.key for c in table.columns if c.secret_url]
    if show_secrets or not secret:
        return table
    rows = [{**row, **{k: mask(row.get(k)) for k in secret}} for row in table.rows]
    return Table(table.columns, rows)


def _pretty(table: Table, width: int | None = None) -> str:
    from tabulate import tabulate

    cells = [[_cell(row.get(c.key), c) for c in table.columns] for row in table.rows]
    headers = [c.header for c in table.columns]
    limits = _fit(headers, cells, width) if width is not None else None
    return tabulate(cells, headers=headers, tablefmt="pretty", disable_numparse=True,
                    maxcolwidths=limits)


def _fit(headers: list[str], cells: list[list[str]], width: int | None) -> list[int | None]:
    """Column limits that make the table fit ``width``: the widest columns are narrowed
    (to no less than 20 characters), the others kept."""
    widths = [max([len(h), *(len(line) for row in cells for line in row[i].splitlines())])
              for i, h in enumerate(headers)]
    limits: list[int | None] = [None] * len(headers)
    if width is None:
        return limits
    # "pretty" draws "| " before, " |" after and " | " between cells
    excess = sum(widths) + 3 * len(widths) + 1 - width
    for i in sorted(range(len(widths)), key=lambda i: -widths[i]):
        if excess <= 0:
            break
        cut = min(excess, widths[i] - 20)
        if cut > 0:
            limits[i] = widths[i] - cut
            excess -= cut
    return limits


def _cell(value: Any, column: Column) -> str:
    if value is None:
        return column.none_as
    if isinstance(value, datetime.datetime):
        return value.isoformat(" ", "seconds")
    if isinstance(value, list | tuple):  # a list in JSON, one cell for people
        return ", ".join(str(item) for item in value)
    return str(value)
