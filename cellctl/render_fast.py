"""Listings of 100,000 rows written at the speed of the wire, byte for byte as the slow
writers write them (cellctl.render's callers never see the difference).

- ``json_rows``: a list of flat dicts as ``json.JSONEncoder(indent=2)`` writes it;
  with an indent the standard library encodes in pure Python, a call per token.
  Here a row of scalars is one line per key from the C string escaper; a row
  holding anything else (a list, an object) is left to the standard encoder.
- ``pretty_lines``: PrettyTable's default table (a frame, centred cells, one
  space of padding) for cells of printable ASCII, where a cell's display
  width is its length and its centring is ``str.center``'s; None when a cell
  is anything else (PrettyTable then measures it with wcwidth).

Both are proven identical to the slow writers on randomized tables
(tests/test_render_fast.py).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from json.encoder import encode_basestring_ascii  # the C escaper when available
from typing import Any

_CONSTANTS: dict[Any, str] = {None: "null", True: "true", False: "false"}
_INF = float("inf")


def json_rows(rows: Iterable[Iterable[tuple[Any, Any]]],
              default: Callable[[Any], Any]) -> Iterator[str]:
    """The pieces of the JSON array of ``rows`` (each an iterable of key, value pairs),
    indented by 2, as ``JSONEncoder(indent=2, default=default)`` writes it."""
    first = True
    for text in _json_texts(rows, default):
        yield ("[\n" if first else ",\n") + text
        first = False
    yield "[]" if first else "\n]"


def json_tuples(keys: Sequence[str], rows: Iterable[tuple[Any, ...]],
                default: Callable[[Any], Any]) -> Iterator[str]:
    """``json_rows`` of rows given as tuples of the values of ``keys``: one template
    for all of them, each value encoded by its type."""
    if not keys or not all(type(key) is str for key in keys):
        yield from json_rows((zip(keys, row, strict=True) for row in rows), default)
        return
    template = "  {\n" + ",\n".join(
        f"    {encode_basestring_ascii(key)}: %s" for key in keys) + "\n  }"
    encoders = _encoders(default)
    first = True
    for row in rows:
        try:
            text = template % tuple([encoders[type(value)](value) for value in row])
        except (KeyError, _NotPlain):
            text = _slow_row(zip(keys, row, strict=True), default)
        yield ("[\n" if first else ",\n") + text
        first = False
    yield "[]" if first else "\n]"


class _NotPlain(Exception):
    pass


def _encoders(default: Callable[[Any], Any]) -> dict[type, Callable[[Any], str]]:
    def shown(value: Any) -> str:
        text = default(value)
        if type(text) is not str:
            raise _NotPlain
        return encode_basestring_ascii(text)

    def number(value: float) -> str:
        if not -_INF < value < _INF:
            raise _NotPlain
        return float.__repr__(value)

    return {str: encode_basestring_ascii, type(None): lambda _: "null",
            bool: lambda value: "true" if value else "false", int: int.__repr__,
            float: number, datetime.datetime: shown, datetime.date: shown}


def _json_texts(rows: Iterable[Iterable[tuple[Any, Any]]],
                default: Callable[[Any], Any]) -> Iterator[str]:
    for row in rows:
        pairs = list(row)
        text = _json_row(pairs, default)
        yield _slow_row(pairs, default) if text is None else text


def _slow_row(pairs: Iterable[tuple[Any, Any]], default: Callable[[Any], Any]) -> str:
    """A row with nested values or odd keys: the standard encoder, indented one level."""
    slow = json.JSONEncoder(indent=2, default=default)
    return "  " + slow.encode(dict(pairs)).replace("\n", "\n  ")


def _json_row(row: Iterable[tuple[Any, Any]], default: Callable[[Any], Any]) -> str | None:
    lines = []
    for key, value in row:
        if type(key) is not str:
            return None
        kind = type(value)
        if kind is str:
            text = encode_basestring_ascii(value)
        elif value is None or kind is bool:
            text = _CONSTANTS[value]
        elif kind is int:
            text = int.__repr__(value)
        elif kind is float and -_INF < value < _INF:
            text = float.__repr__(value)
        elif kind is datetime.datetime or kind is datetime.date:
            shown = default(value)
            if type(shown) is not str:
                return None
            text = encode_basestring_ascii(shown)
        else:
            return None
        lines.append(f"    {encode_basestring_ascii(key)}: {text}")
    if not lines:
        return None
    return "  {\n" + ",\n".join(lines) + "\n  }"


def pretty_lines(headers: Sequence[str], count: int,
                 columns: Callable[[int, int], list[list[str]]]) -> Iterator[str] | None:
    """PrettyTable's lines for ``headers`` over ``count`` rows, whose cells
    ``columns(start, stop)`` gives a column at a time (each column's cells, as
    strings), or None when a header or cell is not printable ASCII. No rows: the
    frame and the header, as PrettyTable prints an empty table.

    Measured and checked a column at a time, CHUNK rows at a time, then written
    the same way (``columns`` is asked twice per chunk: nothing but a chunk is
    held), so the work per cell is C's (``len``, ``str.center``, ``str.join``).
    """
    if not _plain("".join(headers)):
        return None
    widths = [len(header) for header in headers]
    for start in range(0, count, CHUNK):
        for index, column in enumerate(columns(start, start + CHUNK)):
            if not _plain("".join(column)):
                return None
            widths[index] = max(widths[index], max(map(len, column)))
    return _pretty(headers, count, columns, widths)


CHUNK = 10_000


def _plain(text: str) -> bool:
    return text.isascii() and text.isprintable()


def _pretty(headers: Sequence[str], count: int, columns: Callable[[int, int], list[list[str]]],
            widths: list[int]) -> Iterator[str]:
    rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"
    yield rule
    yield "| " + " | ".join(h.center(w) for h, w in zip(headers, widths, strict=True)) + " |"
    yield rule
    for start in range(0, count, CHUNK):
        centred = [map(str.center, column, repeat(width))
                   for column, width in zip(columns(start, start + CHUNK), widths, strict=True)]
        yield from map("| {} |".format, map(" | ".join, zip(*centred, strict=True)))
    yield rule
