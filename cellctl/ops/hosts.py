"""The host commands: discover_hosts, list_hosts, delete_host and map_cell_and_hosts
(whose work, shared with simple_cell_setup, is cellctl.mappings.local_cell's).

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
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from cellctl.cells.queries import (
    compute_services,
    hosts_with_instances,
    unmapped_nodes,
)
from cellctl.cells.reach import CellUnreachable, cell_access, probe_databases, read_cells
from cellctl.cells.refs import (
    AMBIGUOUS_CELL,
    CellRef,
    cell_database,
    cell_has_no_mapping,
    cell_label,
    load_cell,
    select_cells,
)
from cellctl.cells.usage import cell_contents, describe, host_advice, numbered
from cellctl.cells.waiting import (
    WAIT_TIMED_OUT,
    Waited,
    WaitSpec,
    host_report,
    wait_for_computes,
)
from cellctl.clock import utcnow
from cellctl.db import Databases
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
from cellctl.mappings.local_cell import MapCellAndHostsExit as MapCellAndHostsExit
from cellctl.mappings.local_cell import map_cell_and_hosts as map_cell_and_hosts
from cellctl.paging import collector_paused, count_rows, page_after
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Column, Result, Rows, Table
from cellctl.results import DeleteHostData, DiscoverHostsData, HostRow
from cellctl.tables.api import cell_mappings as cm
from cellctl.tables.api import host_mappings as hm
from cellctl.writes.galera import Contention

if TYPE_CHECKING:
    from sqlalchemy.engine import Row


# --- discover_hosts ----------------------------------------------------------


class DiscoverHostsExit(IntEnum):
    """``discover_hosts``' exit codes."""

    OK = 0
    # with strict and nothing new, a cell_uuid not found, or a cell that could not be read
    INCOMPLETE = 1
    CONTENTION = 2  # a batch kept losing to concurrent writers through every retry


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
    wait: WaitSpec | None = None,
) -> Result[DiscoverHostsData, None]:
    """Exit code: 0 ok; 1 with ``strict`` and nothing new, or a cell that could not be
    read; 255 for an unknown ``cell_uuid`` (as nova-manage), 9 for a name two cells
    share; 2 when a batch kept losing to concurrent writers (collisions, deadlocks,
    Galera certification conflicts) through every retry.

    ``wait`` (cellctl's ``--wait-for``/``--expect``): first wait until those compute
    hosts registered in their cells (cellctl.cells.waiting); ``data["hosts"]`` then
    says per host newly mapped, already mapped or missing. Hosts that never came
    are exit 3 (WAIT_TIMED_OUT), naming them; what came is still mapped.
    """
    result: Result[DiscoverHostsData, None] = Result()

    def say(text: str) -> None:
        if verbose:
            result.info(text)

    with dbs.api.connect() as conn:
        looked_up = Result()
        cells = select_cells(conn, looked_up, cell_uuid,
                             not_found_code=DiscoverHostsExit.INCOMPLETE)
    if cells is None:
        if looked_up.code == AMBIGUOUS_CELL:
            result.messages.extend(looked_up.messages)
            result.code = looked_up.code
            return result
        return cell_has_no_mapping(result, cell_uuid or "")  # nova-manage crashes: 255
    waited = None
    if wait is not None:
        waited = wait_for_computes(dbs, [c for c in cells if not c.is_cell0], wait,
                                   by_service=by_service)
        waited_hosts = sorted(set(waited.found) | set(waited.registered) | set(wait.expect))
        before = _mapped_to(dbs, waited_hosts)
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
            result.error(str(exc), DiscoverHostsExit.CONTENTION)
            break
        say(f"Found {run.hosts_mapped} unmapped computes in cell: {cell.uuid}")

    total = sum(run.hosts_mapped for run in runs)
    result.data = {
        "hosts_mapped": total,
        "cells": [{"uuid": r.cell.uuid, "name": r.cell.name, "hosts_mapped": r.hosts_mapped}
                  for r in runs],
    }
    if result.code == 0 and (result.unreachable_cells or (strict and total == 0)):
        result.code = DiscoverHostsExit.INCOMPLETE
    if wait is not None and waited is not None:
        _report_wait(dbs, result, wait, waited, before, waited_hosts)
    return result


def _mapped_to(dbs: Databases, hosts: list[str]) -> dict[str, str | None]:
    """host -> UUID of the cell it is mapped to (None: not mapped)."""
    with dbs.api.connect() as conn:
        key = host_key(conn.dialect.name)
        found = mapped_cells(conn, hosts, key)
    return {host: found[key(host)][1] if key(host) in found else None for host in hosts}


def _report_wait(dbs: Databases, result: Result, wait: WaitSpec, waited: Waited,
                 before: dict[str, str | None], hosts: list[str]) -> None:
    report = host_report(waited, wait, before, _mapped_to(dbs, hosts))
    assert result.data is not None
    missing = waited.missing(wait)
    result.data.update(hosts=report, missing=missing, waited_seconds=waited.seconds,
                       found=len(waited.found), timed_out=not waited.satisfied)
    for entry in report:
        where = (f" in cell '{entry['cell_name']}' ({entry['cell_uuid']})"
                 if entry["cell_uuid"] else "")
        result.info(f"{entry['host']}{where}: {entry['status']}")
    for cell_uuid, why in sorted(waited.unreachable.items()):
        result.warn(f"While waiting, cell {cell_uuid} could not be read: {why}")
    if not waited.satisfied and result.code in (0, 1):
        what = (f"{len(waited.found)} of {wait.count} compute hosts"
                if wait.count is not None else "compute hosts")
        state = "registered and up" if wait.up else "registered"
        result.error(f"Timed out after {wait.timeout:g} s waiting for {what} to be {state}"
                     + (f"; missing: {', '.join(missing)}" if missing else "") + ".",
                     WAIT_TIMED_OUT)


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


class ListHostsExit(IntEnum):
    """``list_hosts``' exit codes."""

    OK = 0
    CELL_NOT_FOUND = 1


class DeleteHostExit(IntEnum):
    """``delete_host``'s exit codes."""

    OK = 0
    CELL_NOT_FOUND = 1
    HOST_NOT_FOUND = 2
    HOST_IN_OTHER_CELL = 3
    HOST_HAS_INSTANCES = 4


HOST_COLUMNS = [
    Column("cell_name", "Cell Name", none_as="None"),
    Column("cell_uuid", "Cell UUID"),
    Column("hostname", "Hostname"),
]
STATE_COLUMN = Column("state", "State")


def list_hosts(dbs: Databases, *, cell_uuid: str | None = None,
               status: bool = False) -> Result[None, HostRow]:
    """Host mappings sorted by host; ``status`` adds each host's compute service state.

    A cell whose database cannot be read does not stop the listing: its hosts
    show as ``unknown`` and the cell is reported unreachable.
    """
    with collector_paused():
        return _list_hosts(dbs, cell_uuid, status)


def _list_hosts(dbs: Databases, cell_uuid: str | None, status: bool) -> Result[None, HostRow]:
    result: Result[None, HostRow] = Result()
    with dbs.api.connect() as conn:
        cells_query = select(cm.c.id, cm.c.uuid, cm.c.name, cm.c.database_connection)
        query = select(hm.c.host, hm.c.cell_id)
        if cell_uuid is not None:
            chosen = select_cells(conn, result, cell_uuid,
                                  not_found_code=ListHostsExit.CELL_NOT_FOUND)
            if chosen is None:
                return result
            cells_query = cells_query.where(cm.c.id == chosen[0].id)
            query = query.where(hm.c.cell_id == chosen[0].id)
        cells = {row.id: CellRef(row.id, row.uuid, row.name, row.database_connection)
                 for row in conn.execute(cells_query)}
        # Streamed into plain tuples: 100,000 mappings hold a tuple and a name each.
        rows = [(host, cell_id) for host, cell_id
                in conn.execution_options(yield_per=10_000).execute(query)
                if cell_id in cells]
    # Sorted here, not in SQL: case-sensitive like nova-manage, whatever the collation.
    rows.sort()
    keys = [c.key for c in HOST_COLUMNS]
    listing: list[tuple[Any, ...]]
    if not status:
        listing = [(cells[cell_id].name, cells[cell_id].uuid, host) for host, cell_id in rows]
        result.table = Table(list(HOST_COLUMNS), Rows(keys, listing))
        return result
    states = _host_states(dbs, cells, rows, result)
    shown = {cell_id: (cell.name, cell.uuid, states.get(cell_id, {}).get)
             for cell_id, cell in cells.items()}
    listing = []
    for host, cell_id in rows:
        name, uuid, state = shown[cell_id]
        listing.append((name, uuid, host, state(host, UNKNOWN)))
    result.table = Table([*HOST_COLUMNS, STATE_COLUMN], Rows([*keys, STATE_COLUMN.key], listing))
    return result


def _host_states(dbs: Databases, cells: dict[int, CellRef], rows: list[tuple[str, int]],
                 result: Result) -> dict[int, dict[str, str]]:
    """Cell id -> host -> the state of the host's compute service, judged by the
    configured service group; a cell that cannot be read is left out."""
    hosts_by_cell: dict[int, list[str]] = {}
    for host, cell_id in rows:
        hosts_by_cell.setdefault(cell_id, []).append(host)
    read = [cells[cell_id] for cell_id in sorted(hosts_by_cell)]
    now = utcnow()
    driver = service_group(dbs.settings)
    try:
        found = read_cells(
            dbs, read,
            lambda cell, engine: compute_host_states(engine, hosts_by_cell[cell.id], driver, now),
            result, left_out=f"hosts of {{cell}} show as {UNKNOWN}")
    finally:
        driver.close()
    warnings = {warning for _, warning in found.values() if warning}
    for warning in sorted(warnings):
        result.warn(warning)
    by_uuid = {cell.uuid: cell.id for cell in read}
    return {by_uuid[cell_uuid]: states for cell_uuid, (states, _) in found.items()}


def delete_host(dbs: Databases, *, cell_uuid: str, host: str,
                dry_run: bool = False) -> Result[DeleteHostData, None]:
    """Delete a host mapping (Nova's checks, in Nova's order).

    Exit 0 deleted, 1 cell not found, 2 host not mapped, 3 host mapped to another
    cell, 4 the host has live instances in the cell. The host's compute nodes
    are marked unmapped before the mapping goes, so a run killed in between
    leaves nothing that discover_hosts would not find again.

    ``dry_run``: write nothing; say what is on the host (instances live and
    deleted, services and compute nodes that would remain) and what to run
    first, and exit with the code the delete would have. A refusal carries the
    same reasons in ``data`` (JSON) and prints nothing more than before.
    """
    result: Result[DeleteHostData, None] = Result()
    with dbs.api.connect() as conn:
        cell = load_cell(conn, result, cell_uuid, DeleteHostExit.CELL_NOT_FOUND)
        if cell is None:
            return result
        uuid = cell.uuid
        mapped = conn.execute(select(hm.c.cell_id, cm.c.uuid).join(cm, cm.c.id == hm.c.cell_id)
                              .where(hm.c.host == host)).first()
    label = cell_label(cell.name, uuid)
    result.data = {"host": host, "cell_uuid": uuid, "deleted": False, "dry_run": dry_run}
    if mapped is None:
        result.data["reasons"] = [f"The host {host} has no host mapping."]
        return _dry_run_lines(result, dry_run).error(f"The host {host} was not found.",
                                                    DeleteHostExit.HOST_NOT_FOUND)
    if mapped.cell_id != cell.id:
        result.data["mapped_to"] = mapped.uuid
        result.data["reasons"] = [
            f"The host {host} is mapped to cell {mapped.uuid}, not to {label}."]
        return _dry_run_lines(result, dry_run).error(
            f"The host {host} was not found in the cell {uuid}.",
            DeleteHostExit.HOST_IN_OTHER_CELL)

    with cell_database(dbs, cell).begin() as conn:
        busy = conn.execute(hosts_with_instances([host]).limit(1)).first() is not None
        if busy or dry_run:
            contents = cell_contents(conn, [host])
            result.data = {**result.data, **contents.as_dict(),
                           "reasons": host_advice(host, label, contents)}
            if dry_run:
                result.info("Refused: there are instances on the host." if busy else
                             f"Would delete the host mapping of {host} in {label} and mark "
                             "its compute nodes unmapped.")
                for line in describe(f"on {host}", contents) + numbered(
                        result.data["reasons"]):
                    result.info(line)
        if busy:
            return result.error(f"There are instances on the host {host}.",
                                DeleteHostExit.HOST_HAS_INSTANCES)
        if dry_run:
            return result
        unmapped = mark_hosts_unmapped(conn, [host])
    with dbs.api.begin() as conn:
        conn.execute(delete(hm).where(hm.c.host == host, hm.c.cell_id == cell.id))
    result.data = {"host": host, "cell_uuid": uuid, "deleted": True, "nodes_unmapped": unmapped}
    return result


def _dry_run_lines(result: Result, dry_run: bool) -> Result:
    if dry_run and result.data:
        for reason in result.data.get("reasons", []):
            result.info(f"Refused: {reason}")
    return result

