"""discover_hosts: map every compute host of every cell (or one) that has no host mapping.

Nova's semantics and verbose wording, with three fixes: every compute node
of a host mapped to the cell is marked mapped (so none is rescanned forever),
a host mapped to another cell is reported instead of silently skipped, and a
collision with a concurrent run is retried rather than fatal. A cell whose
database cannot be used is named and skipped; the others are still mapped.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellctl.db import Databases
from cellctl.ops.cellreach import probe_databases
from cellctl.ops.hosts import (
    BatchOutcome,
    compute_services,
    count_rows,
    map_hosts,
    mark_hosts_mapped,
    mark_nodes_mapped,
    page_after,
    unmapped_nodes,
)
from cellctl.ops.spanning import CellRef, CellUnreachable, cell_access, cell_engine, select_cells
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Result
from cellctl.write_retry import Contention

if TYPE_CHECKING:
    from sqlalchemy.engine import Row


@dataclass
class _CellRun:
    """One cell's discovery: what it mapped, and the lines --verbose prints."""

    cell: CellRef
    say: Callable[[str], Any]
    verbose: bool
    by_service: bool
    hosts_mapped: int = 0
    warned: set[str] = field(default_factory=set)  # hosts mapped to another cell


def discover_hosts(
    dbs: Databases,
    *,
    cell_uuid: str | None = None,
    verbose: bool = False,
    strict: bool = False,
    by_service: bool = False,
    progress: Progress = NO_PROGRESS,
) -> Result:
    """Exit code: 0 ok; 1 with ``strict`` and nothing new, a bad ``cell_uuid``, or a cell
    that could not be read; 2 when a batch kept losing to concurrent writers (collisions,
    deadlocks, Galera certification conflicts) through every retry."""
    result = Result()

    def say(text: str) -> None:
        if verbose:
            result.info(text)

    with dbs.api.connect() as conn:
        cells = select_cells(conn, result, cell_uuid, not_found_code=1)
    if cells is None:
        return result
    if cell_uuid is None:
        say(f"Found {len(cells)} cell mappings.")

    # A dead cell then fails at once in the loop below.
    probe_databases(dbs, [cell for cell in cells if not cell.is_cell0])
    runs: list[_CellRun] = []
    for cell in cells:
        if cell.is_cell0:
            say("Skipping cell0 since it does not contain hosts.")
            continue
        say(f"Getting computes from cell '{cell.name}': {cell.uuid}" if cell.name
            else f"Getting computes from cell: {cell.uuid}")
        run = _CellRun(cell, say, verbose, by_service)
        runs.append(run)
        try:
            _discover_in_cell(dbs, run, result, progress)
        except CellUnreachable as exc:
            result.unreachable(cell.uuid, f"{exc} (hosts of {cell.label} were not discovered)")
            continue
        except Contention as exc:  # a collision or deadlock through every retry
            result.error(str(exc), 2)
            break
        say(f"Found {run.hosts_mapped} unmapped computes in cell: {cell.uuid}")

    total = sum(run.hosts_mapped for run in runs)
    result.data = {
        "hosts_mapped": total,
        "cells": [{"uuid": r.cell.uuid, "name": r.cell.name, "hosts_mapped": r.hosts_mapped}
                  for r in runs],
    }
    if result.code == 0 and (result.unreachable_cells or (strict and total == 0)):
        result.code = 1
    return result


def _discover_in_cell(dbs: Databases, run: _CellRun, result: Result, progress: Progress) -> None:
    """Map one cell's hosts batch by batch.

    Every use of the cell's database runs on one worker thread, so while this
    thread maps batch N in the API database, the cell marks batch N-1's nodes
    and reads batch N+1: the two databases work at the same time. Pages are
    keyset pages and marks name node ids, so neither waits for the other.
    """
    candidates = compute_services() if run.by_service else unmapped_nodes()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cell") as cell_worker:

        def in_cell(future: Future[Any] | None) -> Any:
            with cell_access(run.cell):
                return None if future is None else future.result()

        cell_db = in_cell(cell_worker.submit(cell_engine, dbs, run.cell))
        # The count is a scan of its own: only worth it when a bar shows it.
        total = (None if progress is NO_PROGRESS
                 else in_cell(cell_worker.submit(count_rows, cell_db, candidates)))
        progress.start(f"Discovering hosts in {run.cell.label}", total)
        next_page = cell_worker.submit(page_after, cell_db, candidates, 0)
        marking: Future[int] | None = None
        try:
            while batch := in_cell(next_page):
                next_page = cell_worker.submit(page_after, cell_db, candidates, batch[-1].id)
                # API database errors are not the cell's: they end the command.
                outcome = map_hosts(dbs.api, run.cell, [row.host for row in batch])
                in_cell(marking)
                if run.by_service:
                    marking = cell_worker.submit(mark_hosts_mapped, cell_db, outcome.in_cell)
                else:
                    marking = cell_worker.submit(
                        mark_nodes_mapped, cell_db,
                        [row.id for row in batch if row.host in outcome.in_cell])
                run.hosts_mapped += len(outcome.created)
                if run.verbose or outcome.elsewhere:
                    announced: set[str] = set()  # a host is created in one batch only
                    for row in batch:
                        _report(run, row, outcome, announced, result)
                progress.advance(len(batch))
            in_cell(marking)
        finally:
            progress.finish()


def _report(run: _CellRun, row: Row[Any], outcome: BatchOutcome, announced: set[str],
            result: Result) -> None:
    """Nova's verbose lines for one node (or service), and the warning for a foreign host."""
    host = row.host
    first_time = host in outcome.created and host not in announced
    if first_time:
        announced.add(host)
    if run.by_service:
        if first_time:
            run.say(f"Creating host mapping for service {host}")
    else:
        run.say(f"Checking host mapping for compute host '{host}': {row.uuid}")
        if first_time:
            run.say(f"Creating host mapping for compute host '{host}': {row.uuid}")
    if host in outcome.elsewhere and host not in run.warned:
        run.warned.add(host)
        result.warn(f"Host '{host}' of {run.cell.label} is mapped to cell "
                    f"{outcome.elsewhere[host]}; "
                    "its mapping was left as it is (see delete_host).")
