"""What the service group's drivers and their callers share: the service record a
driver judges, the error of a backend that cannot be reached, and the driver's
interface.

Below ``cellctl.liveness`` and its drivers (``db``, ``memcache``, ``zookeeper``),
so that the package, which picks a driver, and the drivers, which use these,
do not import each other. ``cellctl.liveness`` exports all three.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from cellctl.errors import CellctlError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class ServiceRecord(NamedTuple):
    """What a driver needs of one ``services`` row: a tuple, cheap to make by the
    hundred thousand. ``_make(row)`` of a row of ``columns`` keeps a NULL flag as
    None (falsy); ``of`` makes both flags bools."""

    host: str
    binary: str
    topic: str | None
    disabled: bool
    forced_down: bool
    last_seen_up: datetime.datetime | None
    created_at: datetime.datetime | None

    @classmethod
    def columns(cls, services: Any) -> list[Any]:
        """The columns of the ``services`` table that ``of`` reads, to select."""
        return [services.c[name] for name in cls._fields]

    @classmethod
    def of(cls, row: Any) -> ServiceRecord:
        """From any object with the ``services`` columns (a Row, say)."""
        return cls(row.host, row.binary, row.topic, bool(row.disabled), bool(row.forced_down),
                   row.last_seen_up, row.created_at)


class BackendUnreachable(CellctlError):
    """The driver's backend (memcached, ZooKeeper) cannot be reached; the message is
    masked and names the backend."""


class Driver(Protocol):
    name: str  # "db", "mc", "zk"

    def describe(self) -> str:
        """The backend, masked, for ``cellctl config`` and warnings."""
        ...

    def alive(self, services: Sequence[ServiceRecord],
              now: datetime.datetime) -> list[bool | None]:
        """Each service's liveness by the driver alone (``forced_down`` is the caller's):
        None for one it cannot judge (``take_warnings`` says why). Safe to call from
        several threads at once (cells are read in parallel).

        Raises BackendUnreachable when it can judge none."""
        ...

    def take_warnings(self) -> list[str]:
        """Warnings gathered by ``alive`` since the last call (and forgotten)."""
        ...

    def report(self, cell_db: Engine, service: ServiceRecord) -> datetime.datetime:
        """One heartbeat for ``service``, as its Nova process would send it; the time
        reported. Raises LookupError when the cell has no live such service (the db
        driver; mc and zk do not read the database), BackendUnreachable when the
        backend did not take it."""
        ...

    def close(self) -> None: ...
