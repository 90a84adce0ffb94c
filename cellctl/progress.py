"""Progress reporting for long operations, without operations printing anything.

An operation takes a ``Progress`` and calls ``start``/``advance``/``finish``;
the CLI passes a bar on a terminal and ``NO_PROGRESS`` otherwise.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...

    def advance(self, count: int) -> None: ...

    def finish(self) -> None: ...


class _NoProgress:
    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def finish(self) -> None:
        pass


NO_PROGRESS: Progress = _NoProgress()
