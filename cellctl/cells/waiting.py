"""Waiting for compute hosts to register in their cells (``discover_hosts --wait-for``).

Deployment tools loop on ``openstack compute service list`` before they run
``discover_hosts``. ``wait_for_computes`` does that in one place: every poll
costs one query per cell, whatever the number of hosts (the services of the
hosts asked for, or all compute services for a count, each with whether the
host has a live compute node yet), plus with ``up`` one answer from the
service group driver. A host counts once its nova-compute service is
registered and, unless discovery goes by service, its compute node too (the
node is what discovery maps); with ``up`` the service must also be up.

``host_report`` then says, per host, what discovery made of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellctl.cells.probes import DEFAULT_TIMEOUT
from cellctl.cells.reach import CellUnreachable, cell_access
from cellctl.cells.refs import CellRef, cell_database

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from cellctl.db import Databases
    from cellctl.liveness import Driver

# Exit code of discover_hosts when the hosts waited for did not all come in time.
WAIT_TIMED_OUT = 3
NEWLY_MAPPED, ALREADY_MAPPED, MISSING = "newly mapped", "already mapped", "missing"
ELSEWHERE, NOT_MAPPED = "mapped to another cell", "not mapped"


@dataclass(frozen=True)
class WaitSpec:
    """What to wait for: ``count`` hosts, or the ``expect``ed ones (by exact name)."""

    count: int | None = None
    expect: tuple[str, ...] = ()
    timeout: float = 300.0
    interval: float = 5.0
    up: bool = False


@dataclass
class Waited:
    found: dict[str, CellRef] = field(default_factory=dict)  # host -> its cell (qualifying)
    registered: dict[str, CellRef] = field(default_factory=dict)  # found, not yet qualifying
    unreachable: dict[str, str] = field(default_factory=dict)  # cell UUID -> why (last poll)
    satisfied: bool = False
    polls: int = 0
    seconds: float = 0.0

    def missing(self, spec: WaitSpec) -> list[str]:
        return [host for host in spec.expect if host not in self.found]


def wait_for_computes(dbs: Databases, cells: Sequence[CellRef], spec: WaitSpec, *,
                      by_service: bool, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> Waited:
    """Poll ``cells`` every ``spec.interval`` seconds until ``spec`` is met or times out."""
    driver = None
    if spec.up:
        from cellctl.liveness import service_group

        driver = service_group(dbs.settings)
    start = clock()
    polls = 0
    try:
        while True:
            waited = _poll(dbs, cells, spec, by_service, driver)
            polls += 1
            elapsed = clock() - start
            waited.polls, waited.seconds = polls, round(elapsed, 1)
            waited.satisfied = (len(waited.found) >= spec.count if spec.count is not None
                                else not waited.missing(spec))
            if waited.satisfied or elapsed >= spec.timeout:
                return waited
            sleep(max(0.0, min(spec.interval, spec.timeout - elapsed)))
    finally:
        if driver is not None:
            driver.close()


def _poll(dbs: Databases, cells: Sequence[CellRef], spec: WaitSpec, by_service: bool,
          driver: Driver | None) -> Waited:
    from cellctl.clock import utcnow
    from cellctl.liveness import judge

    waited = Waited()
    now = utcnow()
    for cell in cells:
        try:
            with cell_access(cell):
                rows = _computes(cell_database(dbs, cell, DEFAULT_TIMEOUT), spec.expect or None)
        except CellUnreachable as exc:  # maybe only for now: the next poll asks again
            waited.unreachable[cell.uuid] = str(exc)
            continue
        if spec.expect:
            rows = [row for row in rows if row.host in spec.expect]  # exact, whatever collation
        ready = [row for row in rows if by_service or row.has_node]
        if driver is not None and ready:
            from cellctl.liveness import ServiceRecord

            alive, _ = judge(driver, [ServiceRecord.of(row) for row in ready], now)
            ready = [row for row, up in zip(ready, alive, strict=True) if up]
        for row in rows:
            waited.registered.setdefault(row.host, cell)
        for row in ready:
            waited.found.setdefault(row.host, cell)
    for host in waited.found:
        waited.registered.pop(host, None)
    return waited


def _computes(engine: Engine, hosts: Sequence[str] | None) -> list[Any]:
    """One query: live nova-compute services (of ``hosts``), each with ``has_node``."""
    from sqlalchemy import exists, select

    from cellctl.liveness.records import ServiceRecord
    from cellctl.tables.cell import COMPUTE_BINARY
    from cellctl.tables.cell import compute_nodes as cn
    from cellctl.tables.cell import services as sv

    has_node = exists().where(cn.c.host == sv.c.host, cn.c.deleted == 0).label("has_node")
    query = (select(*ServiceRecord.columns(sv), has_node)
             .where(sv.c.binary == COMPUTE_BINARY, sv.c.deleted == 0, sv.c.host.is_not(None)))
    if hosts is not None:
        query = query.where(sv.c.host.in_(list(hosts)))
    with engine.connect() as conn:
        return list(conn.execute(query))


def host_report(waited: Waited, spec: WaitSpec, before: dict[str, str | None],
                after: dict[str, str | None]) -> list[dict[str, Any]]:
    """Per host (found, registered or expected): its cell and what discovery made of it.

    ``before``/``after``: host -> UUID of the cell it is mapped to (None: unmapped),
    read before and after discovery.
    """
    hosts = sorted(set(waited.found) | set(waited.registered) | set(spec.expect))
    report = []
    for host in hosts:
        cell = waited.found.get(host) or waited.registered.get(host)
        mapped_to = after.get(host)
        if host not in waited.found:
            status = MISSING
        elif mapped_to is None:
            status = NOT_MAPPED
        elif cell is not None and mapped_to != cell.uuid:
            status = ELSEWHERE
        elif before.get(host) == mapped_to:
            status = ALREADY_MAPPED
        else:
            status = NEWLY_MAPPED
        report.append({"host": host, "cell_uuid": cell.uuid if cell else None,
                       "cell_name": cell.name if cell else None, "status": status,
                       "mapped_to": mapped_to,
                       "registered": host in waited.found or host in waited.registered})
    return report
