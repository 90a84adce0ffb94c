"""The service group: whether a Nova service is up, decided as Nova's configured driver decides.

Nova (``nova/servicegroup/api.py``) picks one driver by ``[DEFAULT]
servicegroup_driver``: ``db`` (heartbeats in ``services.last_seen_up``), ``mc``
(heartbeats in memcached) or, up to Nova 12, ``zk`` (ephemeral znodes in
ZooKeeper). Its rules, carried over here:

- ``forced_down`` wins over any heartbeat;
- ``service_down_time <= report_interval`` is raised to ``int(2.5 * report_interval)``;
- a driver whose backend cannot be reached judges nothing: those services are
  *unknown* (None), never down.

Drivers live in ``db.py``, ``memcache.py`` and ``zookeeper.py``; only the
chosen one is imported, and its client library only when it first talks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cellctl.errors import CellctlError

if TYPE_CHECKING:
    import datetime

    from sqlalchemy.engine import Engine

    from cellctl.settings import Settings

UP, DOWN, UNKNOWN = "up", "down", "unknown"
DRIVERS = ("db", "mc", "zk")
DEFAULT_DRIVER = "db"
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
        """From any object with the ``services`` columns (a SQLAlchemy row)."""
        return cls(host=row.host, binary=row.binary, topic=row.topic,
                   disabled=bool(row.disabled), forced_down=bool(row.forced_down),
                   last_seen_up=row.last_seen_up, created_at=row.created_at)


class BackendUnreachable(CellctlError):
    """The driver's backend cannot be reached; the message is masked and names the backend."""


class Driver(Protocol):
    name: str  # "db" | "mc" | "zk"
    # Warnings gathered while judging (a value that is not a heartbeat, a server that
    # did not answer): the caller moves them into its Result.
    warnings: list[str]

    def describe(self) -> str:
        """The backend, masked, for ``cellctl config`` and warnings."""
        ...

    def alive(self, services: Sequence[ServiceRecord],
              now: datetime.datetime) -> list[bool | None]:
        """Each service's liveness by the driver alone (forced_down is the caller's):
        True/False, or None where this one service cannot be judged (its server is
        down, its value is not a heartbeat). Bulk: one multi-get per batch or one
        listing per group, never a round trip per service. Raises BackendUnreachable
        when nothing can be judged."""
        ...

    def report(self, cell_db: Engine, service: ServiceRecord) -> None:
        """One heartbeat, written where Nova's driver writes it."""
        ...

    def close(self) -> None: ...


def down_seconds(service_down_time: int, report_interval: int) -> int:
    """Nova's ``service_down_time``, raised to 2.5x ``report_interval`` when not above it."""
    if service_down_time <= report_interval:
        return int(report_interval * 2.5)
    return service_down_time


def judge(driver: Driver, services: Sequence[ServiceRecord],
          now: datetime.datetime) -> list[bool | None]:
    """Nova's ``service_is_up`` for each service: forced_down wins; None (unknown) for
    every service the driver cannot judge, all of them when its backend is unreachable
    (the reason is added to ``driver.warnings`` once)."""
    if not services:
        return []
    asked = [s for s in services if not s.forced_down]
    try:
        verdicts = iter(driver.alive(asked, now) if asked else [])
    except BackendUnreachable as exc:
        _warn_once(driver, f"{exc}: liveness of {len(asked)} service(s) unknown")
        return [False if s.forced_down else None for s in services]
    return [False if s.forced_down else next(verdicts) for s in services]


def _warn_once(driver: Driver, text: str) -> None:
    if text not in driver.warnings:
        driver.warnings.append(text)


def host_state(*, disabled: bool | None, forced_down: bool | None, up: bool | None) -> str:
    """One word for a host's compute service, the most urgent first: "forced down",
    then "unknown" (liveness could not be read), "down", "disabled", "up"."""
    if forced_down:
        return "forced down"
    if up is None:
        return UNKNOWN
    if not up:
        return DOWN
    return "disabled" if disabled else UP


def service_group(settings: Settings, *, timeout: float | None = None) -> Driver:
    """The driver Nova would use with these settings ([DEFAULT] servicegroup_driver,
    CELLCTL_SERVICEGROUP_DRIVER), with its down time already raised as Nova raises it.
    ``timeout`` bounds each talk to the backend (default: the probe budget)."""
    from cellctl.liveness import options
    from cellctl.reach import DEFAULT_TIMEOUT

    budget = DEFAULT_TIMEOUT if timeout is None else timeout
    name = options.driver_name(settings)
    seconds = down_seconds(options.service_down_time(settings), options.report_interval(settings))
    if name == "mc":
        from cellctl.liveness.memcache import MemcacheDriver

        return MemcacheDriver(options.memcache_options(settings), down_seconds=seconds,
                              timeout=budget)
    if name == "zk":
        from cellctl.liveness.zookeeper import ZooKeeperDriver

        return ZooKeeperDriver(options.zookeeper_options(settings), timeout=budget)
    from cellctl.liveness.db import DbDriver

    return DbDriver(down_seconds=seconds)
