"""Reaching cells' databases and queues, all at once, each bounded by a timeout.

A command that spans cells probes every cell's database first
(``probe_databases``): a dead, black-holed or stopped cell then costs the
timeout once, instead of a driver's wait per query (or forever: PyMySQL
waits without limit for the greeting of a server that accepted the
connection but is stopped), and the command goes on with the cells that
answered. The probe's connection is pooled and serves the command's reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal

from cellctl.errors import CellctlError
from cellctl.ops.spanning import CellRef, cell_engine
from cellctl.reach import DEFAULT_TIMEOUT, Probe, probe_database, probe_queue, run_bounded
from cellctl.urls import kombu_urls, mask, validate_transport_url

if TYPE_CHECKING:
    from cellctl.db import Databases

Target = Literal["database", "queue"]


@dataclass(frozen=True)
class CellProbe:
    cell: CellRef
    target: Target
    url: str | None  # masked
    probe: Probe | None  # None: deliberately not probed (cell0's none:/// queue)


def probe_databases(dbs: Databases, cells: list[CellRef],
                    timeout: float = DEFAULT_TIMEOUT) -> dict[str, str]:
    """Cell UUID -> why, for each of ``cells`` whose database did not answer.

    From then on ``dbs.cell()`` (and so ``cell_engine``) raises that reason at
    once for those cells, so a command's own per-cell error handling reports them.
    """
    return failed_databases(probe_cells(dbs, cells, timeout, queues=False))


def failed_databases(probes: list[CellProbe]) -> dict[str, str]:
    """Cell UUID -> why, for the database probes that failed."""
    return {p.cell.uuid: p.probe.error or "unreachable" for p in probes
            if p.target == "database" and p.probe is not None and not p.probe.ok}


def probe_cells(dbs: Databases, cells: list[CellRef], timeout: float, *,
                queues: bool) -> list[CellProbe]:
    """Probe every cell's database (and with ``queues`` every queue host), all in parallel.

    A database that fails is marked unreachable in ``dbs`` for the rest of the command.
    """
    planned: list[tuple[CellRef, Target, str | None, Callable[[], Probe] | None]] = []
    for cell in cells:
        planned.append((cell, "database", mask(dbs.expand_database_url(cell.database_connection)),
                        _database_job(dbs, cell, timeout)))
        if queues:
            transport = dbs.expand_transport_url(cell.transport_url)
            planned.extend((cell, "queue", url, job)
                           for url, job in _queue_jobs(cell, transport, timeout))
    jobs = {index: job for index, (_, _, _, job) in enumerate(planned) if job is not None}
    outcomes = run_bounded(jobs, timeout)
    probes = []
    for index, (cell, target, url, _) in enumerate(planned):
        probe = outcomes.get(index)
        if probe is not None and probe.timed_out:  # worded as the probes word their errors
            what = f"use database of {cell.label}" if target == "database" else "connect to queue"
            probe = Probe(False, error=f"Cannot {what} {url}: {probe.error}", timed_out=True)
        if target == "database" and probe is not None and not probe.ok:
            dbs.mark_unreachable(cell.database_connection, probe.error or "unreachable")
        probes.append(CellProbe(cell, target, url, probe))
    return probes


def _database_job(dbs: Databases, cell: CellRef, timeout: float) -> Callable[[], Probe]:
    # Engines are made here, in this thread: Databases' cache is not thread-safe.
    try:
        engine = cell_engine(dbs, cell, timeout)
    except CellctlError as exc:
        return partial(Probe.failed, str(exc))
    return partial(probe_database, engine)


def _queue_jobs(cell: CellRef, url: str | None, timeout: float
                ) -> list[tuple[str | None, Callable[[], Probe] | None]]:
    """One job per queue host; a job of None means "not probed" (cell0 has no queue)."""
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
        no_queue = f"{cell.label} has no message queue ({mask(url)})"
        return [(mask(url), partial(Probe.failed, no_queue))]
    if len(hosts) == 1:
        return [(mask(url), partial(probe_queue, hosts[0], timeout, url))]
    # Each host of an oslo multi-host URL is probed, and shown, on its own.
    scheme = url.partition("://")[0]
    shown = [scheme + host[host.index("://"):] for host in hosts]
    return [(mask(one), partial(probe_queue, host, timeout, one))
            for host, one in zip(hosts, shown, strict=True)]
