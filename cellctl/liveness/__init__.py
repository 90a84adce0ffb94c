"""The service group: whether a Nova service is alive, decided as Nova decides it.

Nova asks its service group driver (``[DEFAULT] servicegroup_driver``) after
two rules of its own, which hold whatever the driver:

- a service an admin forced down is down, whatever its heartbeats say;
- ``service_down_time`` no longer than ``report_interval`` is raised to
  ``int(2.5 * report_interval)`` (``nova.servicegroup.api.API``;
  cellctl.liveness.options.down_seconds).

A driver answers for many services at once (one query, multi-get or
multiRead per batch, never a round trip per host); the listings stream a
cell's services and ask JUDGE_BATCH of them per call. When its backend cannot be reached
it raises ``BackendUnreachable`` and ``judge`` makes every service it would
have judged *unknown*, never *down*: a cache that is down says nothing about
the computes.

A driver may also leave single services unjudged (None): the memcached
server holding their keys is down, or what it holds is not a heartbeat; it
says why in ``take_warnings``, which ``judge`` passes on.

Drivers: ``db`` (cellctl.liveness.db), ``mc`` (cellctl.liveness.memcache),
``zk`` (cellctl.liveness.zookeeper); only the configured one is imported, and
its client library only when it first talks to its backend. Their options are
read in cellctl.liveness.options; what they share with this module (``ServiceRecord``,
``BackendUnreachable``, the ``Driver`` interface) is declared in
cellctl.liveness.records and exported here.
"""

from __future__ import annotations

import datetime
from collections.abc import Container, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from cellctl.liveness.records import BackendUnreachable, Driver, ServiceRecord

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from cellctl.settings import Settings

UP, DOWN, UNKNOWN = "up", "down", "unknown"
FORCED_DOWN, DISABLED = "forced down", "disabled"
# The state of a mapped host whose cell has no nova-compute service for it.
NO_SERVICE = "no service"
# Services judged per call of a driver by the listings: few calls, little held at once.
JUDGE_BATCH = 10_000


def service_group(settings: Settings, *, timeout: float | None = None) -> Driver:
    """The driver the deployment configured, as Nova picks it (``[DEFAULT]
    servicegroup_driver``, ``CELLCTL_SERVICEGROUP_DRIVER``; default db), with
    ``service_down_time`` raised as Nova raises it. ``timeout`` bounds each talk to
    the backend (default: the probe budget of a cell database)."""
    from cellctl.cells.probes import DEFAULT_TIMEOUT
    from cellctl.liveness import options

    budget = DEFAULT_TIMEOUT if timeout is None else timeout
    name = options.driver_name(settings)
    seconds = options.down_seconds(settings)
    if name == "mc":
        from cellctl.liveness.memcache import MemcacheDriver

        return MemcacheDriver(options.memcache_options(settings), down_seconds=seconds,
                              timeout=budget)
    if name == "zk":
        from cellctl.liveness.zookeeper import ZooKeeperDriver

        return ZooKeeperDriver(options.zookeeper_options(settings), timeout=budget)
    from cellctl.liveness.db import DbDriver

    return DbDriver(seconds)


def judge(driver: Driver, services: Sequence[ServiceRecord],
          now: datetime.datetime) -> tuple[list[bool | None], str | None]:
    """Nova's ``service_is_up`` for each service, and the warning when the backend was out.

    ``forced_down`` wins, and the driver is not asked about such a service;
    otherwise the driver decides. None (unknown) for every service the driver
    could not judge: all of them when its backend is unreachable.
    """
    asked = [service for service in services if not service.forced_down]
    warnings = []
    try:
        verdicts = iter(driver.alive(asked, now) if asked else [])
    except BackendUnreachable as exc:
        verdicts = iter([None] * len(asked))
        warnings.append(f"{exc}: liveness unknown")
    warnings += driver.take_warnings()
    alive: list[bool | None] = [False if service.forced_down else next(verdicts)
                                for service in services]
    return alive, "; ".join(warnings) or None


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


def compute_host_states(engine: Engine, hosts: Iterable[str], driver: Driver,
                        now: datetime.datetime) -> tuple[dict[str, str], str | None]:
    """The state of each of ``hosts``'s nova-compute service in one cell database, and
    the driver's warning if its backend could not be reached.

    The cell's live compute services are read once, streamed, and judged
    JUDGE_BATCH at a time, so memory holds one batch of them whatever the cell's
    size; hosts with no live service get NO_SERVICE. The keys of the answer are
    the strings of ``hosts`` (exact, case-sensitive matches).
    """
    states = dict.fromkeys(hosts, NO_SERVICE)
    warnings: list[str] = []
    for records in compute_services(engine, states):
        alive, warning = judge(driver, records, now)
        if warning and warning not in warnings:
            warnings.append(warning)
        for record, up in zip(records, alive, strict=True):
            states[record.host] = host_state(disabled=record.disabled,
                                             forced_down=record.forced_down, up=up)
    return states, "; ".join(warnings) or None


def compute_services(engine: Engine, hosts: Container[str]) -> Iterator[list[ServiceRecord]]:
    """The cell's live nova-compute services on ``hosts``, JUDGE_BATCH at a time, read in
    one streamed query."""
    from sqlalchemy import select

    from cellctl.tables.cell import COMPUTE_BINARY
    from cellctl.tables.cell import services as sv

    query = (select(*ServiceRecord.columns(sv))
             .where(sv.c.binary == COMPUTE_BINARY, sv.c.deleted == 0))
    make = ServiceRecord._make  # the row as it is: a NULL flag stays None (falsy)
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=JUDGE_BATCH).execute(query)
        for part in rows.partitions():
            yield [make(row) for row in part if row[0] in hosts]
