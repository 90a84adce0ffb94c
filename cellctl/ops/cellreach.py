"""The mapped cells, and reaching their databases and queues with a timeout.

A command that spans cells first probes every cell's database in parallel
(``reachable_cells``): a dead, black-holed or frozen cell then costs at most
the timeout, once, and the command goes on with the cells that answered,
naming the others in its Result as unreachable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal

from cellctl.errors import CellctlError
from cellctl.ops.common import CELL0_UUID, cell_label
from cellctl.reach import DEFAULT_TIMEOUT, Probe, probe_database, probe_queue, run_bounded
from cellctl.result import Result
from cellctl.urls import kombu_urls, mask, validate_transport_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from cellctl.db import Databases

Target = Literal["database", "queue"]


@dataclass(frozen=True)
class MappedCell:
    """A row of cell_mappings with its URLs expanded from Nova templates."""

    id: int
    uuid: str
    name: str | None
    database_connection: str | None
    transport_url: str | None
    disabled: bool

    @property
    def label(self) -> str:
        return cell_label(self.name, self.uuid)

    @property
    def is_cell0(self) -> bool:
        return self.uuid == CELL0_UUID


@dataclass(frozen=True)
class CellProbe:
    cell: MappedCell
    target: Target
    url: str | None  # masked
    probe: Probe | None  # None: deliberately not probed (cell0's none:/// queue)


def mapped_cells(dbs: Databases) -> list[MappedCell]:
    """Every cell mapping, oldest first."""
    from cellctl.tables.api import cell_mappings as cm

    with dbs.api.connect() as conn:
        rows = conn.execute(cm.select().order_by(cm.c.id)).all()
    return [
        MappedCell(
            id=r.id, uuid=r.uuid, name=r.name,
            database_connection=dbs.expand_database_url(r.database_connection),
            transport_url=dbs.expand_transport_url(r.transport_url),
            disabled=bool(r.disabled),
        )
        for r in rows
    ]


def cell_engine(dbs: Databases, cell: MappedCell, timeout: float = DEFAULT_TIMEOUT) -> Engine:
    """The cell's database engine, connecting with ``timeout``."""
    return dbs.cell(cell.database_connection, f"database of {cell.label}",
                    connect_timeout=timeout)


def reachable_cells(dbs: Databases, result: Result, cells: list[MappedCell],
                    timeout: float = DEFAULT_TIMEOUT) -> list[MappedCell]:
    """The cells whose database answers; the others are recorded in ``result`` as unreachable."""
    probes = probe_cells(dbs, cells, timeout, queues=False)
    mark_unreachable_databases(result, probes)
    return [p.cell for p in probes if p.probe is not None and p.probe.ok]


def mark_unreachable_databases(result: Result, probes: list[CellProbe]) -> None:
    for probe in probes:
        if probe.target == "database" and probe.probe is not None and not probe.probe.ok:
            mark_unreachable(result, probe.cell, probe.probe.error or "unreachable")


def mark_unreachable(result: Result, cell: MappedCell, reason: str) -> None:
    """Record the cell once, with a warning that names it."""
    if cell.uuid not in result.unreachable_cells:
        result.unreachable(cell.uuid, reason)


def probe_cells(dbs: Databases, cells: list[MappedCell], timeout: float, *,
                queues: bool) -> list[CellProbe]:
    """Probe every cell's database (and with ``queues`` every queue host), all in parallel."""
    planned: list[tuple[MappedCell, Target, str | None, Callable[[], Probe] | None]] = []
    for cell in cells:
        planned.append((cell, "database", mask(cell.database_connection),
                        _database_job(dbs, cell, timeout)))
        if queues:
            planned.extend((cell, "queue", url, job) for url, job in _queue_jobs(cell, timeout))
    jobs = {index: job for index, (_, _, _, job) in enumerate(planned) if job is not None}
    outcomes = run_bounded(jobs, timeout)
    probes = []
    for index, (cell, target, url, _) in enumerate(planned):
        probe = outcomes.get(index)
        if probe is not None and probe.timed_out:  # worded as the probes word their errors
            what = f"use database of {cell.label}" if target == "database" else "connect to queue"
            probe = Probe(False, error=f"Cannot {what} {url}: {probe.error}", timed_out=True)
        probes.append(CellProbe(cell, target, url, probe))
    return probes


def _database_job(dbs: Databases, cell: MappedCell, timeout: float) -> Callable[[], Probe]:
    # Engines are made here, in this thread: Databases' cache is not thread-safe.
    try:
        engine = cell_engine(dbs, cell, timeout)
    except CellctlError as exc:
        return partial(Probe.failed, str(exc))
    return partial(probe_database, engine)


def _queue_jobs(cell: MappedCell, timeout: float
                ) -> list[tuple[str | None, Callable[[], Probe] | None]]:
    """One job per queue host; a job of None means "not probed" (cell0 has no queue)."""
    url = cell.transport_url
    if cell.is_cell0 and (not url or url.startswith("none:")):
        return [(url, None)]
    if not url:
        return [(None, partial(Probe.failed, f"{cell.label} has no transport URL"))]
    try:
        validate_transport_url(url)
        hosts = kombu_urls(url)
    except CellctlError as exc:
        return [(mask(url), partial(Probe.failed, f"Invalid transport URL: {exc}"))]
    if not hosts:
        return [(mask(url), partial(Probe.failed, f"{cell.label} has no message queue ({url})"))]
    if len(hosts) == 1:
        return [(mask(url), partial(probe_queue, hosts[0], timeout, url))]
    # Each host of an oslo multi-host URL is probed, and shown, on its own.
    scheme = url.partition("://")[0]
    shown = [scheme + host[host.index("://"):] for host in hosts]
    return [(mask(one), partial(probe_queue, host, timeout, one))
            for host, one in zip(hosts, shown, strict=True)]
