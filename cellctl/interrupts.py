"""The signal state of the ``cellctl`` program (see cellctl.console): which signal
interrupted it, and the exception its handler raises."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

EXIT_CODES: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(BaseException):
    """Raised by the handler. Not an ``Exception``: no ``except Exception`` of cellctl or
    of a driver turns it into an error report."""


_received: list[int] = []


def received() -> int | None:
    """The signal that interrupted this process, if one did."""
    return _received[0] if _received else None


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _received:  # the first signal decides; cleaning up is not interrupted again
        return
    _received.append(signum)
    raise Interrupted(signum)


def record(signum: int) -> None:
    """Note a signal found pending (blocked) as the one that interrupted the command."""
    if not _received:
        _received.append(signum)


def _not_the_interrupt(record: logging.LogRecord) -> bool:
    """Drop a library's report of the interrupt itself: SQLAlchemy's pool logs, with a
    traceback, an ``Interrupted`` raised while it resets a connection, before the
    one-line exit says the same."""
    exc = record.exc_info[1] if record.exc_info else None
    return not isinstance(exc, Interrupted)


_lost: list[Callable[[], Any]] = []


def _unraisable(unraisable: Any) -> None:
    """An ``Interrupted`` raised where Python cannot propagate it (a weakref callback of
    the import machinery, a ``__del__``) would be printed with a traceback and then
    lost: the program ends there as it ends for every interrupt (``install``'s
    ``exit``). Anything else is Python's to report."""
    if isinstance(unraisable.exc_value, Interrupted) and _lost:
        _lost[0]()
    sys.__unraisablehook__(unraisable)


def install(exit: Callable[[], Any] | None = None) -> None:
    """The handlers; ``exit`` ends the program at once for an interrupt raised where it
    cannot propagate."""
    for sig in EXIT_CODES:
        signal.signal(sig, _handler)
    if exit is not None:
        _lost[:] = [exit]
        sys.unraisablehook = _unraisable
    # Libraries' unhandled log records go to logging.lastResort (cellctl configures
    # no logging handler).
    if logging.lastResort is not None:
        logging.lastResort.addFilter(_not_the_interrupt)
