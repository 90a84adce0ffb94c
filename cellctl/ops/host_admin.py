"""list_hosts and delete_host: reading and removing host mappings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cellctl.db import Databases
from cellctl.ops.cellreach import probe_databases
from cellctl.ops.common import cell_database, load_cell, utcnow
from cellctl.ops.servicegroup import UNKNOWN, compute_host_states
from cellctl.ops.spanning import CellRef, CellUnreachable, cell_access, cell_engine, select_cells
from cellctl.result import Column, Result, Table

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

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
        rows = conn.execute(query).all()
    # Sorted here, not in SQL: case-sensitive like nova-manage, whatever the collation.
    rows.sort(key=lambda r: r.host)
    listing: list[dict[str, Any]] = [
        {"cell_name": r.name, "cell_uuid": r.uuid, "hostname": r.host} for r in rows
    ]
    columns = list(HOST_COLUMNS)
    if status:
        columns.append(STATE_COLUMN)
        cells_by_id = {r.id: CellRef(r.id, r.uuid, r.name, r.database_connection) for r in rows}
        states = _states_by_cell(dbs, cells_by_id, rows, result)
        for row, entry in zip(rows, listing, strict=True):
            entry["state"] = states.get((row.id, row.host), UNKNOWN)
    result.table = Table(columns, listing)
    return result


def _states_by_cell(
    dbs: Databases, cells: dict[int, CellRef], rows: list[Any], result: Result
) -> dict[tuple[int, str], str]:
    hosts_by_cell: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        hosts_by_cell[row.id].append(row.host)
    # A dead cell then fails at once in the loop below.
    probe_databases(dbs, [cells[cell_id] for cell_id in sorted(hosts_by_cell)])
    now = utcnow()
    states: dict[tuple[int, str], str] = {}
    for cell_id in sorted(hosts_by_cell):
        cell = cells[cell_id]
        try:
            with cell_access(cell):
                found = compute_host_states(cell_engine(dbs, cell), hosts_by_cell[cell_id],
                                            now=now,
                                            down_seconds=dbs.settings.service_down_seconds)
        except CellUnreachable as exc:
            result.unreachable(cell.uuid, f"{exc} (hosts of {cell.label} show as {UNKNOWN})")
            continue
        states.update(((cell_id, host), state) for host, state in found.items())
    return states


def delete_host(dbs: Databases, cell_uuid: str, host: str) -> Result:
    """Delete a host mapping (Nova's checks, in Nova's order).

    Exit 0 deleted, 1 cell not found, 2 host not mapped, 3 host mapped to another
    cell, 4 the host has live instances in the cell. The host's compute nodes
    are marked unmapped before the mapping goes, so a run killed in between
    leaves nothing that discover_hosts would not find again.
    """
    from sqlalchemy import delete, select

    from cellctl.tables.api import host_mappings as hm
    from cellctl.tables.cell import compute_nodes as cn

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
        if hosts_with_instances(conn, [host]):
            return result.error(f"There are instances on the host {host}.", 4)
        unmapped = conn.execute(
            cn.update().where(cn.c.host == host, cn.c.deleted == 0)
            .values(mapped=0, updated_at=utcnow())
        ).rowcount
    with dbs.api.begin() as conn:
        conn.execute(delete(hm).where(hm.c.host == host, hm.c.cell_id == cell.id))
    result.data = {"host": host, "cell_uuid": uuid, "deleted": True, "nodes_unmapped": unmapped}
    return result


def hosts_with_instances(conn: Connection, hosts: Sequence[str]) -> set[str]:
    """Those of ``hosts`` that have a live (not deleted) instance in this cell database.

    What keeps ``delete_host`` (and ``audit --fix``) from removing a host's
    mapping: soft-deleted VMs and hidden rows count, as Nova counts them.
    """
    from sqlalchemy import select

    from cellctl.tables.cell import instances

    if not hosts:
        return set()
    query = (select(instances.c.host)
             .where(instances.c.host.in_(list(hosts)), instances.c.deleted == 0)
             .group_by(instances.c.host))
    return set(conn.execute(query).scalars())
