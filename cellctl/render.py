"""Write Results for people (nova-manage's PrettyTable tables) and for scripts (JSON, CSV).

The one place that decides what reaches stdout and stderr, and the one place
that masks passwords in output.
"""

from __future__ import annotations

import csv
import datetime
import json
import sys
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import IO, Any

from cellctl.render_fast import json_rows, json_tuples, pretty_lines
from cellctl.result import Column, Message, Result, Rows, Table
from cellctl.urls import mask, mask_like_nova

FORMATS = ("table", "json", "csv")


def render(result: Result, fmt: str, *, show_secrets: bool = False, nova_face: bool = False,
           out: IO[str] | None = None, err: IO[str] | None = None,
           width: int | None = None) -> None:
    """``nova_face``: a command under nova-manage's name, whose errors nova-manage
    prints on stdout (deployment tools read them there). ``width``: wrap a table
    to fit (a terminal); None: never wrap."""
    out = out or sys.stdout
    err = err or sys.stderr
    table = _masked(result.table, show_secrets, fmt) if result.table is not None else None
    for message in result.messages:
        _message(message, fmt, out, err, nova_face=nova_face)
    if result.unreachable_cells and fmt == "json":
        _json_line(err, {"level": "warning", "message": "Some cells could not be reached",
                         "unreachable_cells": result.unreachable_cells})
    if fmt == "json":
        _json(result, table, out)
    elif fmt == "csv":
        _csv(result, table, out)
    elif table is not None:
        _write_pretty(table, width, out)


def error_line(text: str, fmt: str, err: IO[str] | None = None, *,
               nova_face: bool = False) -> None:
    """An error that ended a command before it produced a Result."""
    _message(Message("error", text), fmt, sys.stdout, err or sys.stderr, nova_face=nova_face)


def _message(message: Message, fmt: str, out: IO[str], err: IO[str], *,
             nova_face: bool = False) -> None:
    if fmt == "json":
        _json_line(err, {"level": message.level, "message": message.text})
    elif fmt == "table" and (message.level == "info"
                             or (nova_face and message.level == "error")):
        out.write(message.text + "\n")  # as nova-manage prints it: stdout, no prefix
    else:
        prefix = {"info": "", "note": "", "warning": "WARNING: ", "error": "ERROR: "}
        err.write(prefix[message.level] + message.text + "\n")


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
    if table is not None and payload is table.rows:
        rows = table.rows
        _write_pieces(json_tuples(rows.keys, rows.tuples, _json_default) if isinstance(rows, Rows)
                      else json_rows((row.items() for row in rows), _json_default), out)
    else:
        _write_pieces(json.JSONEncoder(indent=2, default=_json_default).iterencode(payload),
                      out)
    out.write("\n")


def _write_pieces(pieces: Iterable[str], out: IO[str]) -> None:
    held: list[str] = []
    size = 0
    for piece in pieces:
        held.append(piece)
        size += len(piece)
        if size >= 65536:
            out.write("".join(held))
            held, size = [], 0
    out.write("".join(held))


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


def _masked(table: Table, show_secrets: bool, fmt: str) -> Table:
    secret = [c.key for c in table.columns if c.secret_url]
    if show_secrets or not secret:
        return table
    # nova-manage's masking in nova-manage's table; cellctl's (shape-keeping) in JSON/CSV
    masks = {c.key: mask_like_nova if c.nova_mask and fmt == "table" else mask
             for c in table.columns if c.secret_url}
    rows = [{**row, **{k: masks[k](row.get(k)) for k in secret}} for row in table.rows]
    return Table(table.columns, rows)


def _write_pretty(table: Table, width: int | None, out: IO[str]) -> None:
    """The table as nova-manage prints it: PrettyTable's bytes (cellctl.render_fast's
    when every cell is printable ASCII and nothing is wrapped)."""
    lines = None
    if width is None:
        memos: list[dict[Any, str]] = [{} for _ in table.columns]
        lines = pretty_lines([c.header for c in table.columns], len(table.rows),
                             lambda start, stop: _columns(table, memos, start, stop))
    if lines is None:
        out.write(_pretty(table, width) + "\n")
        return
    _write_pieces((line + "\n" for line in lines), out)


def _columns(table: Table, memos: list[dict[Any, str]] | None = None, start: int = 0,
             stop: int | None = None) -> list[list[str]]:
    """Each column's cells, of rows ``start`` to ``stop``, as a table shows them; a
    column's converted values are kept in its ``memos`` entry."""
    rows = table.rows
    memos = memos or [{} for _ in table.columns]
    if not isinstance(rows, Rows):
        return [[_cell(row.get(c.key), c) for row in rows[start:stop]] for c in table.columns]
    at = {key: index for index, key in enumerate(rows.keys)}
    part = rows.tuples[start:stop]
    columns = []
    for column, memo in zip(table.columns, memos, strict=True):
        index = at.get(column.key)
        values = [None] * len(part) if index is None else map(itemgetter(index), part)
        columns.append([v if type(v) is str else _shown(v, column, memo) for v in values])
    return columns


def _shown(value: Any, column: Column, memo: dict[Any, str]) -> str:
    """``_cell``, one string per distinct value of a column (100,000 heartbeats within
    a minute show as a few dozen distinct seconds)."""
    key = (type(value), value)
    try:
        return memo[key]
    except KeyError:
        memo[key] = text = _cell(value, column)
        return text
    except TypeError:  # unhashable: a list
        return _cell(value, column)


def _cells(table: Table) -> Iterator[list[str]]:
    """Each row's cells as a table shows them."""
    return (list(cells) for cells in zip(*_columns(table), strict=True))


def _pretty(table: Table, width: int | None = None) -> str:
    """The table as nova-manage prints it: PrettyTable, the library nova-manage
    renders with, with its defaults (centred, one space of padding); with
    ``width`` (a terminal), wrapped to fit it."""
    from prettytable import PrettyTable

    pretty = PrettyTable([c.header for c in table.columns])
    pretty.add_rows([row for row in _cells(table)])
    if width is not None:
        pretty.max_table_width = width
    return pretty.get_string()


def _cell(value: Any, column: Column) -> str:
    if value is None:
        return column.none_as
    if isinstance(value, datetime.datetime):
        return value.isoformat(" ", "seconds")
    if isinstance(value, list | tuple):  # a list in JSON, one cell for people
        return ", ".join(str(item) for item in value)
    return str(value)
