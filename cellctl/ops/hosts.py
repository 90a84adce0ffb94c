"""The host commands: discover_hosts, list_hosts, delete_host and map_cell_and_hosts.

``discover_hosts`` has Nova's semantics and verbose wording, with three
fixes: every compute node of a host mapped to the cell is marked mapped (so
none is rescanned forever), a host mapped to another cell is reported
instead of silently skipped, and a collision with a concurrent run is
retried rather than fatal. A cell whose database cannot be used is named and
skipped; the others are still mapped. The batches themselves are
cellctl.mappings.hosts'; a host's state is cellctl.liveness'.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellctl.cells.queries import (
    compute_services,
    hosts_with_instances,
    live_nodes,
    unmapped_nodes,
)
from cellctl.cells.reach import CellUnreachable, cell_access, probe_databases, read_cells
from cellctl.cells.refs import (
    CELL0_UUID,
    CellRef,
    cell_database,
    cell_has_no_mapping,
    insert_cell,
    load_cell,
    select_cells,
)
from cellctl.cells.urls import resolve_transport_url
from cellctl.clock import utcnow
from cellctl.db import Databases
from cellctl.ids import new_uuid
from cellctl.liveness import UNKNOWN, compute_host_states, service_group
from cellctl.mappings.hosts import (
    BatchOutcome,
    host_key,
    map_hosts,
    mapped_cells,
    mark_hosts_mapped,
    mark_hosts_unmapped,
    mark_nodes_mapped,
)
from cellctl.paging import count_rows, keyset_pages, page_after
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Column, Result, Table
from cellctl.writes.galera import Contention
from cellctl.writes.transactions import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine, Row


# --- discover_hosts ----------------------------------------------------------


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
    """Exit code: 0 ok; 1 with ``strict`` and nothing new, or a cell that could not be
    read; 255 for an unknown ``cell_uuid`` (as nova-manage); 2 when a batch kept losing
    to concurrent writers (collisions, deadlocks, Galera certification conflicts)
    through every retry."""
    result = Result()

    def say(text: str) -> None:
        if verbose:
            result.info(text)

    with dbs.api.connect() as conn:
        cells = select_cells(conn, Result(), cell_uuid, not_found_code=1)
    if cells is None:  # nova-manage crashes on an unknown --cell_uuid: 255
        return cell_has_no_mapping(result, cell_uuid or "")
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

        cell_db = in_cell(cell_worker.submit(cell_database, dbs, run.cell))
        # The count is a scan of its own: only worth it when a bar shows it.
        total = (None if progress is NO_PROGRESS
                 else in_cell(cell_worker.submit(count_rows, cell_db, candidates)))
        progress.start(f"Discovering hosts in {run.cell.label}", total)
        next_page = cell_worker.submit(page_after, cell_db, candidates)
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


# --- list_hosts and delete_host ----------------------------------------------


HOST_COLUMNS = [
    Column("cell_name", "Cell Name", none_as="None"),
    Column("cell_uuid", "Cell UUID"),
    Column("hostname", "Hostname"),
]
STATE_COLUMN = Column("state", "State")


def list_hosts(dbs: Databases, cell_uuid: str | None = None, *, status: bool = False) -> Result:
    """Host mappings sorted by host; ``status`` adds each host's compute service state.

    A cell whose database cannot be read does not stop the listing: its hosts
    show as ``unknown`` and the cell is reported unreachable.
    """
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm
    from cellctl.tables.api import host_mappings as hm

    result = Result()
    with dbs.api.connect() as conn:
        query = (select(hm.c.host, cm.c.id, cm.c.uuid, cm.c.name, cm.c.database_connection)
                 .join(cm, cm.c.id == hm.c.cell_id))
        if cell_uuid is not None:
            cells = select_cells(conn, result, cell_uuid, not_found_code=1)
            if cells is None:
                return result
            query = query.where(cm.c.id == cells[0].id)
        rows = list(conn.execute(query))
    # Sorted here, not in SQL: case-sensitive like nova-manage, whatever the collation.
    rows.sort(key=lambda r: r.host)
    listing: list[dict[str, Any]] = [
        {"cell_name": r.name, "cell_uuid": r.uuid, "hostname": r.host} for r in rows
    ]
    columns = list(HOST_COLUMNS)
    if status:
        columns.append(STATE_COLUMN)
        states = _host_states(dbs, rows, result)
        for row, entry in zip(rows, listing, strict=True):
            entry["state"] = states.get((row.uuid, row.host), UNKNOWN)
    result.table = Table(columns, listing)
    return result


def _host_states(dbs: Databases, rows: list[Any], result: Result) -> dict[tuple[str, str], str]:
    """(cell UUID, host) -> the state of the host's compute service, judged by the
    configured service group; a cell that cannot be read leaves its hosts out."""
    cells: dict[str, CellRef] = {}
    hosts_by_cell: dict[str, list[str]] = {}
    for row in sorted(rows, key=lambda r: r.id):
        cells.setdefault(row.uuid, CellRef(row.id, row.uuid, row.name, row.database_connection))
        hosts_by_cell.setdefault(row.uuid, []).append(row.host)
    now = utcnow()
    driver = service_group(dbs.settings)
    try:
        found = read_cells(
            dbs, list(cells.values()),
            lambda cell, engine: compute_host_states(engine, hosts_by_cell[cell.uuid], driver,
                                                     now),
            result, left_out=f"hosts of {{cell}} show as {UNKNOWN}")
    finally:
        driver.close()
    warnings = {warning for _, warning in found.values() if warning}
    for warning in sorted(warnings):
        result.warn(warning)
    return {(cell_uuid, host): state for cell_uuid, (states, _) in found.items()
            for host, state in states.items()}


def delete_host(dbs: Databases, cell_uuid: str, host: str) -> Result:
    """Delete a host mapping (Nova's checks, in Nova's order).

    Exit 0 deleted, 1 cell not found, 2 host not mapped, 3 host mapped to another
    cell, 4 the host has live instances in the cell. The host's compute nodes
    are marked unmapped before the mapping goes, so a run killed in between
    leaves nothing that discover_hosts would not find again.
    """
    from sqlalchemy import delete, select

    from cellctl.tables.api import host_mappings as hm

    result = Result()
    with dbs.api.connect() as conn:
        cell = load_cell(conn, result, cell_uuid, 1)
        if cell is None:
            return result
        uuid = cell.uuid
        mapped_to = conn.execute(select(hm.c.cell_id).where(hm.c.host == host)).scalar()
    if mapped_to is None:
        return result.error(f"The host {host} was not found.", 2)
    if mapped_to != cell.id:
        return result.error(f"The host {host} was not found in the cell {uuid}.", 3)

    with cell_database(dbs, cell).begin() as conn:
        if conn.execute(hosts_with_instances([host]).limit(1)).first() is not None:
            return result.error(f"There are instances on the host {host}.", 4)
        unmapped = mark_hosts_unmapped(conn, [host])
    with dbs.api.begin() as conn:
        conn.execute(delete(hm).where(hm.c.host == host, hm.c.cell_id == cell.id))
    result.data = {"host": host, "cell_uuid": uuid, "deleted": True, "nodes_unmapped": unmapped}
    return result


# --- map_cell_and_hosts -----------------------------------------------------


def map_cell_and_hosts(
    dbs: Databases,
    *,
    transport_url: str | None = None,
    name: str | None = None,
    verbose: bool = False,
    progress: Progress = NO_PROGRESS,
) -> Result:
    """Map ``[database]`` as a cell with its compute hosts (Nova's map_cell_and_hosts).

    Hosts go to the cell some of them are already mapped to, else to the cell
    whose database is ``[database]``, else to a new cell with ``name`` and the
    transport URL. ``data``: ``cell_uuid`` (None when there is no host),
    ``cell_created``, ``compute_nodes`` (live nodes read) and ``hosts_mapped``
    (the hosts this run mapped).
    """
    result = Result()
    transport = resolve_transport_url(dbs, transport_url, result)
    if transport is None:
        return result
    local = dbs.local_cell
    survey = _survey_local_hosts(dbs.api, local, result if verbose else None)
    result.data = {"cell_uuid": survey.last_cell_uuid, "cell_created": False,
                   "compute_nodes": survey.nodes, "hosts_mapped": []}
    if survey.nodes == 0:
        return result.info("No hosts found to map to cell, exiting.")
    if not survey.any_unmapped:
        return result.info("All hosts are already mapped to cell(s).")

    cell, created = _target_cell(dbs, survey.last_cell_uuid, name, transport)
    mapped: list[str] = []
    progress.start(f"Mapping hosts to {cell.label}", survey.nodes)
    try:
        for batch in keyset_pages(local, live_nodes()):
            outcome = map_hosts(dbs.api, cell, [row.host for row in batch])
            mark_nodes_mapped(local, [row.id for row in batch if row.host in outcome.in_cell])
            mapped.extend(sorted(outcome.created))
            progress.advance(len(batch))
    finally:
        progress.finish()
    if verbose:
        result.info(cell.uuid)
    result.data.update(cell_uuid=cell.uuid, cell_created=created, hosts_mapped=mapped)
    return result


@dataclass
class _Survey:
    nodes: int = 0
    any_unmapped: bool = False
    last_cell_uuid: str | None = None  # the cell of the last already-mapped node, as Nova picks


def _survey_local_hosts(api: Engine, local: Engine, verbose_to: Result | None) -> _Survey:
    survey = _Survey()
    for batch in keyset_pages(local, live_nodes()):
        with api.connect() as conn:
            key = host_key(conn.dialect.name)
            mapped = mapped_cells(conn, sorted({row.host for row in batch}), key)
        for row in batch:
            found = mapped.get(key(row.host))
            if found is None:
                survey.any_unmapped = True
                continue
            survey.last_cell_uuid = found[1]
            if verbose_to is not None:
                verbose_to.info(f"Host {row.host} is already mapped to cell {found[1]}")
        survey.nodes += len(batch)
    return survey


def _target_cell(
    dbs: Databases, mapped_cell_uuid: str | None, name: str | None, transport: str
) -> tuple[CellRef, bool]:
    """The cell to map into, and whether it was created now.

    Looking for a cell that already has ``[database]`` (rather than always
    creating one, as nova-manage does) makes a run killed after creating the
    cell, or two runs at once, end with one cell.
    """
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm
    from cellctl.writes.locks import CELL_LOCK

    database = dbs.local_cell_url
    with write_transaction(dbs.api, lock=CELL_LOCK) as conn:
        rows = conn.execute(
            select(cm.c.id, cm.c.uuid, cm.c.name, cm.c.database_connection).order_by(cm.c.id)
        ).all()
        for row in rows:
            if row.uuid == mapped_cell_uuid or (
                mapped_cell_uuid is None and row.uuid != CELL0_UUID
                and dbs.expand_database_url(row.database_connection) == database
            ):
                return CellRef(row.id, row.uuid, row.name, row.database_connection), False
        cell_uuid = new_uuid()
        cell_id = insert_cell(conn, cell_uuid, name, transport, database)
    return CellRef(cell_id, cell_uuid, name, database), True
