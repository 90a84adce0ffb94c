"""Numbers typed on the command line, parsed once here so operations take ints and floats.

Each command keeps its own wording and exit code for a bad value (some are
nova-manage's, byte for byte); the operation then gets a typed number and
checks only its range, in Python terms, for Python callers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from cellctl.errors import CellctlError

N = TypeVar("N", int, float)


class BadInput(CellctlError):
    """An argument the command line cannot turn into what the operation takes; the CLI
    prints its message, one error line per line, and exits with its code."""


def number(value: str | None, kind: Callable[[str], N], *, valid: Callable[[N], bool],
           message: str, code: int = 1) -> N | None:
    """``value`` as ``kind`` (None stays None); else BadInput with ``message``, in which
    ``{value}`` is the value as typed, quoted (``'abc'``)."""
    if value is None:
        return None
    try:
        parsed = kind(value)
        if valid(parsed):
            return parsed
    except (TypeError, ValueError):
        pass
    raise BadInput(message.format(value=repr(value)), code=code)


def checked(*parsers: Callable[[], Any]) -> list[Any]:
    """Every parser's value; when some fail, one BadInput with all their messages (a
    command reports every bad number at once), the first one's code."""
    values: list[Any] = []
    failed: list[BadInput] = []
    for parse in parsers:
        try:
            values.append(parse())
        except BadInput as exc:
            failed.append(exc)
    if failed:
        raise BadInput("\n".join(str(exc) for exc in failed), code=failed[0].code)
    return values


def positive(parsed: float) -> bool:
    return parsed > 0


def not_negative(parsed: float) -> bool:
    return math.isfinite(parsed) and parsed >= 0
