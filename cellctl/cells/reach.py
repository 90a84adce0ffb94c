"""Reading across cells: probe every cell first, then read each, and never let a dead
cell stop the command.

A command that spans cells probes every cell's database first
(``probe_databases``, ``probe_cells``): a dead, black-holed or stopped cell
then costs the timeout once, instead of a driver's wait per query (or
forever: PyMySQL waits without limit for the greeting of a server that
accepted the connection but is stopped), and the command goes on with the
cells that answered. The probe's connection is pooled and serves the
command's reads.

``read_cells`` is the whole sequence for a listing: probe, read every cell
that answered (in parallel), record every one that did not (or failed
since) with ``Result.unreachable``. Commands that write while they go
(``discover_hosts``), and its polls while it waits for hosts
(cellctl.cells.waiting), wrap their per-cell work in ``cell_access`` instead,
which turns any failure of the cell's database into ``CellUnreachable``.
A command that reads the cells its own way (``audit``'s merge walks) keeps
its record in an ``Unreachable`` (``open_cells``, ``Unreachable.access``,
``Unreachable.report``), which is what ``read_cells`` keeps too: one record
of the cells that could not be read, one word for them. Errors of the API
database are never the cell's: without it no command can go on.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Literal, TypeVar

from cellctl.cells.probes import DEFAULT_TIMEOUT, Probe, probe_database, probe_queue, run_bounded
from cellctl.cells.refs import CellRef, cell_database
from cellctl.errors import CellctlError, DatabaseError
from cellctl.result import Result
from cellctl.urls import kombu_urls, mask, validate_transport_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from cellctl.db import Databases

T = TypeVar("T")
# Cells read at once by read_cells: enough for tens of cells, few enough
# threads that connection pools and servers are not flooded.
MAX_PARALLEL_CELLS = 8


class CellUnreachable(CellctlError):
    """A cell's database could not be used; ``message`` says why (masked)."""

    def __init__(self, cell: CellRef, reason: CellctlError) -> None:
        super().__init__(str(reason))
        self.cell = cell


@contextlib.contextmanager
def cell_access(cell: CellRef) -> Iterator[None]:
    """Turn any failure to use ``cell``'s database inside the block into CellUnreachable."""
    try:
        yield
    except CellUnreachable:
        raise
    except CellctlError as exc:
        raise CellUnreachable(cell, exc) from None


class Unreachable:
    """The cells a command could not read, each with why (the first reason); thread-safe."""

    def __init__(self) -> None:
        self._why: dict[str, str] = {}  # cell UUID -> why
        self._lock = threading.Lock()

    def mark(self, cell: CellRef, why: str) -> None:
        with self._lock:
            self._why.setdefault(cell.uuid, why)

    def __contains__(self, cell: CellRef) -> bool:
        return cell.uuid in self._why

    def __bool__(self) -> bool:
        return bool(self._why)

    @contextlib.contextmanager
    def access(self, cell: CellRef) -> Iterator[None]:
        """``cell_access`` that also records the failure here, and fails at once for a
        cell recorded already (its database is not asked again)."""
        try:
            with cell_access(cell):
                if cell.uuid in self._why:
                    raise CellUnreachable(cell, CellctlError(self._why[cell.uuid]))
                yield
        except CellUnreachable as exc:
            self.mark(cell, str(exc))
            raise

    def report(self, result: Result, cells: Sequence[CellRef], left_out: str | None) -> None:
        """``result.unreachable`` for each recorded cell, in the order of ``cells``, with
        the line ``"<why> (<left_out>)"`` (``left_out`` may name the cell as ``{cell}``)."""
        for cell in cells:
            if cell.uuid in self._why:
                why = self._why[cell.uuid]
                if left_out:
                    why += f" ({left_out.format(cell=cell.label)})"
                result.unreachable(cell.uuid, why)


def open_cells(dbs: Databases, cells: Sequence[CellRef], unreachable: Unreachable, *,
               timeout: float = DEFAULT_TIMEOUT, probe: bool = True) -> dict[str, Engine]:
    """Probe every cell at once (unless ``probe`` is False: done already) and open the
    engines of those that answered: cell UUID -> engine. Every other cell is recorded
    in ``unreachable``. (Engines are made here, in one thread: Databases' cache is not
    shared.)"""
    if probe:
        probe_databases(dbs, list(cells), timeout)
    engines: dict[str, Engine] = {}
    for cell in cells:
        try:
            engines[cell.uuid] = cell_database(dbs, cell, timeout)
        except CellctlError as exc:
            unreachable.mark(cell, str(exc))
    return engines


def read_cells(
    dbs: Databases,
    cells: Sequence[CellRef],
    read: Callable[[CellRef, Engine], T],
    result: Result,
    *,
    left_out: str | None,
    timeout: float = DEFAULT_TIMEOUT,
    probe: bool = True,
    workers: int = MAX_PARALLEL_CELLS,
) -> dict[str, T]:
    """``read(cell, engine)`` for every cell whose database answers, all cells in parallel.

    Returns cell UUID -> what ``read`` returned, in the order of ``cells``.
    A cell that does not answer its probe, or whose database fails during
    ``read``, is recorded with ``result.unreachable`` and the line
    ``"<why> (<left_out>)"``, where ``left_out`` may name the cell as
    ``{cell}``: e.g. ``"services of {cell} are not listed"``. ``probe`` False:
    the caller probed them already. ``workers`` 1 reads one cell after the
    other (for a progress bar, which only one reader may drive).
    """
    unreachable = Unreachable()
    engines = open_cells(dbs, cells, unreachable, timeout=timeout, probe=probe)

    def attempt(cell: CellRef, engine: Engine) -> T | CellctlError:
        try:
            return read(cell, engine)
        except DatabaseError as exc:
            if exc.url is not None and exc.url == dbs.api_url:
                raise  # the API database failing ends the command
            return exc
        except CellctlError as exc:
            return exc

    readable = [cell for cell in cells if cell.uuid in engines]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(readable))),
                            thread_name_prefix="cell-read") as pool:
        futures = {cell.uuid: pool.submit(attempt, cell, engines[cell.uuid])
                   for cell in readable}
        outcomes = {uuid: future.result() for uuid, future in futures.items()}
    found: dict[str, T] = {}
    for cell in readable:
        outcome = outcomes[cell.uuid]
        if isinstance(outcome, CellctlError):
            unreachable.mark(cell, str(outcome))
        else:
            found[cell.uuid] = outcome
    unreachable.report(result, cells, left_out)
    return found


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

    From then on ``dbs.cell()`` (and so ``cell_database``) raises that reason at
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
        engine = cell_database(dbs, cell, timeout)
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
