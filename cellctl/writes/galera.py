"""Batches that survive other writers and fit the server.

One mechanism for every bulk writer: host-mapping batches, node marking,
map_instances batches.

A batch transaction can lose to another writer without anything being wrong:

- a unique-key collision the batch code itself detects (it raises ``Retry``);
- MySQL error 1213: an InnoDB deadlock, and on Galera a write set that failed
  certification against one committed through another node, or a transaction
  brute-force aborted by a replicated one (``GET_LOCK`` is local to one Galera
  node, so locks do not serialise writers on different nodes);
- MySQL error 1205, a lock wait timeout.

All of them roll the whole transaction back, so redoing the batch from its
look-up is safe; ``retried`` does that with exponential backoff and jitter,
and raises ``Contention`` (with a message saying it is safe to run the
command again) only when every retry lost.

A batch can also be too big for the server: Galera refuses a transaction
whose write set exceeds ``wsrep_max_ws_rows`` or ``wsrep_max_ws_size``, and
every server refuses a statement longer than ``max_allowed_packet``.
``write_limits`` reads those once per engine so batches are sized below them,
and ``too_large`` recognises a refusal so a caller can split the batch and
try again (the limits are then lowered for the rest of the run).
"""

from __future__ import annotations

import random
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from cellctl.errors import CellctlError, DatabaseError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


T = TypeVar("T")
I = TypeVar("I")  # noqa: E741
R = TypeVar("R")

DEADLOCK = 1213  # also Galera certification failures and brute-force aborts
LOCK_WAIT_TIMEOUT = 1205
TRANSIENT_ERRNOS = frozenset({DEADLOCK, LOCK_WAIT_TIMEOUT})
WRITE_RETRIES = 8
_BACKOFF_BASE = 0.05  # seconds before the first retry; doubled each time, with jitter
_BACKOFF_CAP = 1.0

# How the server says a transaction or statement was too big for it.
_TOO_LARGE_ERRNOS = frozenset({1153, 1180, 1105, 1301})
_TOO_LARGE_TEXT = ("wsrep_max_ws_rows", "maximum writeset size", "max_allowed_packet",
                   "packet bigger", "writeset size exceeded")


class Retry(Exception):
    """Raised inside a batch to have it rolled back and redone after a pause."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        self.detail = detail


class Contention(CellctlError):
    """A batch lost to concurrent writers through every retry; nothing is half-written."""

    def __init__(self, what: str, last: BaseException, *, message: str | None = None) -> None:
        """``message`` replaces the standard one (a command's own wording)."""
        detail = last.detail if isinstance(last, Retry) else str(last)
        super().__init__(message or (
            f"{what} kept conflicting with concurrent writers through {WRITE_RETRIES} retries "
            "(deadlock, lock wait timeout or Galera certification conflict). Nothing is wrong "
            "with what was written so far and it is safe to run the command again. "
            f"Error: {detail}"
        ))
        self.last = last


def transient(exc: BaseException) -> bool:
    """A deadlock, certification failure or lock wait timeout: the batch may be redone."""
    return isinstance(exc, DatabaseError) and exc.errno in TRANSIENT_ERRNOS


def too_large(exc: BaseException) -> bool:
    """The server refused a transaction or statement for its size (write set, packet)."""
    if not isinstance(exc, DatabaseError):
        return False
    text = str(exc).lower()
    return exc.errno in _TOO_LARGE_ERRNOS and any(t in text for t in _TOO_LARGE_TEXT)


def retried(attempt: Callable[[], T], *, what: str, retries: int = WRITE_RETRIES) -> T:
    """``attempt()``, redone after a pause each time it raises ``Retry`` or a transient error.

    ``attempt`` must be one whole transaction (it is rolled back when it fails).
    Raises ``Contention`` when the last retry lost too; any other error at once.
    """
    for number in range(retries + 1):
        try:
            return attempt()
        except Retry as exc:
            last: BaseException = exc
        except DatabaseError as exc:
            if not transient(exc):
                raise
            last = exc
        if number < retries:
            pause = min(_BACKOFF_CAP, _BACKOFF_BASE * 2**number)
            time.sleep(pause * (0.5 + random.random()))
    raise Contention(what, last)


# --- what the server accepts in one transaction ------------------------------------


@dataclass
class WriteLimits:
    """Bounds for one transaction on this server; None: no bound of that kind."""

    max_rows: int | None = None  # rows changed per transaction (Galera wsrep_max_ws_rows)
    max_bytes: int | None = None  # write-set bytes per transaction (wsrep_max_ws_size)
    max_statement: int | None = None  # bytes per statement (max_allowed_packet)
    galera: bool = False

    def rows_for(self, wanted: int, row_bytes: int, *, extra_rows: int = 0) -> int:
        """How many rows of about ``row_bytes`` each fit one transaction (at most ``wanted``),
        leaving room for ``extra_rows`` more rows written in it."""
        fit = wanted
        if self.max_rows:
            fit = min(fit, self.max_rows - extra_rows)
        if self.max_bytes:
            # Keep a fifth in hand: the estimate is only an estimate.
            fit = min(fit, int(self.max_bytes * 0.8) // max(row_bytes, 1) - extra_rows)
        return max(fit, 1)

    def shrink(self, refused_rows: int) -> None:
        """The server refused ``refused_rows`` rows at once: allow at most half as many."""
        self.max_rows = max(1, refused_rows // 2) if self.max_rows is None \
            else max(1, min(self.max_rows, refused_rows // 2))


def in_parts(items: Sequence[I], limits: WriteLimits, row_bytes: int,
             write: Callable[[Sequence[I], bool], R], *, extra_rows: int = 0) -> list[R]:
    """``write(part, is_last)`` for consecutive parts of ``items`` that each fit one
    transaction; a part the server still refuses as too large is halved and redone
    (and every later part is cut as small). ``write`` gets nothing when ``items``
    is empty."""
    results: list[R] = []
    start = 0
    while start < len(items):
        size = limits.rows_for(len(items) - start, row_bytes, extra_rows=extra_rows)
        part = items[start : start + size]
        try:
            results.append(write(part, start + size >= len(items)))
        except DatabaseError as exc:
            if not too_large(exc) or len(part) == 1:
                raise
            limits.shrink(len(part))
            continue
        start += size
    return results


_limits: weakref.WeakKeyDictionary[Engine, WriteLimits] = weakref.WeakKeyDictionary()

_STATEMENT_MARGIN = 4096  # bytes of a packet that are not the statement's text


def write_limits(engine: Engine) -> WriteLimits:
    """The server's limits on one transaction, read once per engine (MySQL/MariaDB only)."""
    found = _limits.get(engine)
    if found is not None:
        return found
    limits = WriteLimits()
    if engine.dialect.name in ("mysql", "mariadb"):
        from sqlalchemy import text

        with engine.connect() as conn:
            values = {str(name).lower(): str(value) for name, value in conn.execute(text(
                "SHOW VARIABLES WHERE Variable_name IN "
                "('wsrep_on', 'wsrep_max_ws_rows', 'wsrep_max_ws_size', 'max_allowed_packet')"
            ))}
        packet = _number(values.get("max_allowed_packet"))
        if packet:
            limits.max_statement = max(1024, packet - _STATEMENT_MARGIN)
        if values.get("wsrep_on", "OFF").upper() == "ON":
            limits.galera = True
            limits.max_rows = _number(values.get("wsrep_max_ws_rows")) or None  # 0: no limit
            limits.max_bytes = _number(values.get("wsrep_max_ws_size")) or None
    _limits[engine] = limits
    return limits


def _number(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0
