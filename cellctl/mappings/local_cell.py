"""Mapping ``[database]`` as a cell with its compute hosts: the core of
``map_cell_and_hosts``, which ``simple_cell_setup`` runs too."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from sqlalchemy import select

from cellctl.cells.queries import live_nodes
from cellctl.cells.refs import CELL0_UUID, CellRef, insert_cell
from cellctl.cells.urls import BAD_TRANSPORT_URL, resolve_transport_url
from cellctl.db import Databases
from cellctl.ids import new_uuid
from cellctl.mappings.hosts import host_key, map_hosts, mapped_cells, mark_nodes_mapped
from cellctl.paging import keyset_pages
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Result
from cellctl.results import MapCellAndHostsData
from cellctl.tables.api import cell_mappings as cm
from cellctl.writes.locks import CELL_LOCK
from cellctl.writes.transactions import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class MapCellAndHostsExit(IntEnum):
    """``map_cell_and_hosts``' exit codes."""

    OK = 0  # mapped, or nothing to map
    BAD_TRANSPORT_URL = BAD_TRANSPORT_URL  # missing or invalid: nothing is written


def map_cell_and_hosts(
    dbs: Databases,
    *,
    transport_url: str | None = None,
    name: str | None = None,
    verbose: bool = False,
    progress: Progress = NO_PROGRESS,
) -> Result[MapCellAndHostsData, None]:
    """Map ``[database]`` as a cell with its compute hosts (Nova's map_cell_and_hosts).

    Hosts go to the cell some of them are already mapped to, else to the cell
    whose database is ``[database]``, else to a new cell with ``name`` and the
    transport URL. ``data``: ``cell_uuid`` (None when there is no host),
    ``cell_created``, ``compute_nodes`` (live nodes read) and ``hosts_mapped``
    (the hosts this run mapped).
    """
    result: Result[MapCellAndHostsData, None] = Result()
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
    result.data.update({"cell_uuid": cell.uuid, "cell_created": created,
                        "hosts_mapped": mapped})
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
