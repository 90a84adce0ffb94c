"""The service group: whether a Nova service is alive, decided as Nova decides it.

Nova asks its service group driver (``[DEFAULT] servicegroup_driver``) after
two rules of its own, which hold whatever the driver:

- a service an admin forced down is down, whatever its heartbeats say;
- ``service_down_time`` no longer than ``report_interval`` is raised to
  ``int(2.5 * report_interval)`` (``nova.servicegroup.api.API``).

A driver answers for many services at once (one query, multi-get or listing
per batch, never a round trip per host). When its backend cannot be reached
it raises ``BackendUnreachable`` and ``judge`` makes every service it would
have judged *unknown*, never *down*: a cache that is down says nothing about
the computes.

Drivers: ``db`` (cellctl.liveness.db).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cellctl.errors import CellctlError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from cellctl.settings import Settings

UP, DOWN, UNKNOWN = "up", "down", "unknown"
FORCED_DOWN, DISABLED = "forced down", "disabled"
# The state of a mapped host whose cell has no nova-compute service for it.
NO_SERVICE = "no service"

DEFAULT_REPORT_INTERVAL = 10  # seconds, Nova's [DEFAULT] report_interval


@dataclass(frozen=True)
class ServiceRecord:
    """What a driver needs of one ``services`` row."""

    host: str
    binary: str
    topic: str | None
    disabled: bool
    forced_down: bool
    last_seen_up: datetime.datetime | None
    created_at: datetime.datetime | None

    @classmethod
    def of(cls, row: Any) -> ServiceRecord:
        """From any object with the ``services`` columns (a Row, say)."""
        return cls(host=row.host, binary=row.binary, topic=row.topic,
                   disabled=bool(row.disabled), forced_down=bool(row.forced_down),
                   last_seen_up=row.last_seen_up, created_at=row.created_at)


class BackendUnreachable(CellctlError):
    """The driver's backend (memcached, ZooKeeper) cannot be reached; the message is
    masked and names the backend."""


class Driver(Protocol):
    name: str  # "db", "mc", "zk"

    def describe(self) -> str:
        """The backend, masked, for ``cellctl config`` and warnings."""
        ...

    def alive(self, services: Sequence[ServiceRecord], now: datetime.datetime) -> list[bool]:
        """Each service's liveness by the driver alone (``forced_down`` is the caller's).

        Raises BackendUnreachable."""
        ...

    def report(self, cell_db: Engine, service: ServiceRecord) -> datetime.datetime:
        """One heartbeat for ``service``, as its Nova process would send it; the time
        reported. Raises LookupError when the cell has no live such service."""
        ...

    def close(self) -> None: ...


def down_seconds(service_down_time: int, report_interval: int = DEFAULT_REPORT_INTERVAL) -> int:
    """``service_down_time`` as Nova uses it (raised when not above ``report_interval``)."""
    if service_down_time <= report_interval:
        return int(report_interval * 2.5)
    return service_down_time


def service_group(settings: Settings) -> Driver:
    """The driver the deployment configured, as Nova picks it."""
    from cellctl.liveness.db import DbDriver

    return DbDriver(down_seconds(settings.service_down_seconds))


def judge(driver: Driver, services: Sequence[ServiceRecord],
          now: datetime.datetime) -> tuple[list[bool | None], str | None]:
    """Nova's ``service_is_up`` for each service, and the warning when the backend was out.

    ``forced_down`` wins; otherwise the driver decides. None (unknown) for
    every service the driver could not judge because its backend is unreachable.
    """
    try:
        alive: list[bool | None] = list(driver.alive(services, now))
        warning = None
    except BackendUnreachable as exc:
        alive, warning = [None] * len(services), str(exc)
    return [False if service.forced_down else up
            for service, up in zip(services, alive, strict=True)], warning


def host_state(*, disabled: bool | None, forced_down: bool | None, up: bool | None) -> str:
    """One word for a host's compute service, the most urgent first.

    An operator acts first on a service an admin forced down, then on one that
    stopped reporting; a disabled service that still reports is healthy but
    takes no new instances. Unknown when the service group could not tell.
    """
    if forced_down:
        return FORCED_DOWN
    if up is None:
        return UNKNOWN
    if not up:
        return DOWN
    return DISABLED if disabled else UP


def compute_host_states(engine: Engine, hosts: Sequence[str], driver: Driver,
                        now: datetime.datetime) -> tuple[dict[str, str], str | None]:
    """The state of each of ``hosts``'s nova-compute service in one cell database, and
    the driver's warning if its backend could not be reached.

    One query per batch of hosts; hosts with no live service get NO_SERVICE.
    """
    from sqlalchemy import select

    from cellctl.paging import chunks
    from cellctl.tables.cell import COMPUTE_BINARY
    from cellctl.tables.cell import services as sv

    wanted = sorted(set(hosts))
    states = dict.fromkeys(wanted, NO_SERVICE)
    records: list[ServiceRecord] = []
    with engine.connect() as conn:
        for batch in chunks(wanted):
            rows = conn.execute(
                select(sv.c.host, sv.c.binary, sv.c.topic, sv.c.disabled, sv.c.forced_down,
                       sv.c.last_seen_up, sv.c.created_at)
                .where(sv.c.binary == COMPUTE_BINARY, sv.c.deleted == 0, sv.c.host.in_(batch))
            )
            records.extend(ServiceRecord.of(row) for row in rows if row.host in states)
    alive, warning = judge(driver, records, now)
    for record, up in zip(records, alive, strict=True):
        states[record.host] = host_state(disabled=record.disabled,
                                         forced_down=record.forced_down, up=up)
    return states, warning
