"""Cell mappings: map_cell0, create_cell, list_cells, update_cell, delete_cell."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from cellctl.cells.refs import (
    CellRef,
    cell_database,
    insert_cell,
    is_cell0,
    load_cell,
)
from cellctl.cells.urls import invalid_urls, resolve_transport_url, url_or_fallback
from cellctl.clock import utcnow
from cellctl.db import Databases
from cellctl.ids import new_uuid
from cellctl.result import Column, Result, Table
from cellctl.writes.locks import CELL_LOCK
from cellctl.writes.transactions import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from cellctl.results import (
        CellRow,
        CreateCellData,
        DeleteCellData,
        MapCell0Data,
        UpdateCellData,
    )

# What only map_cell0, delete_cell's explanation and its unmapping need is imported
# there: list_cells, mostly start-up, does not pay for it.

class CreateCellExit(IntEnum):
    """``create_cell``'s exit codes."""

    OK = 0
    BAD_URL = 1  # a URL missing or invalid
    DUPLICATE = 2  # another cell has the transport URL or database


class UpdateCellExit(IntEnum):
    """``update_cell``'s exit codes."""

    OK = 0
    NOT_FOUND = 1
    INVALID_URL = 2  # also the command's code when the change cannot be saved
    DUPLICATE = 3
    DISABLE_AND_ENABLE = 4
    CELL0_DISABLE = 5


class DeleteCellExit(IntEnum):
    """``delete_cell``'s exit codes."""

    OK = 0
    NOT_FOUND = 1
    HAS_HOSTS = 2  # without force
    HAS_INSTANCES = 3  # living ones
    HAS_INSTANCE_MAPPINGS = 4  # of deleted instances only, without force


CELL_COLUMNS = [
    Column("name", "Name"),
    Column("uuid", "UUID"),
    Column("transport_url", "Transport URL", secret_url=True, nova_mask=True),
    Column("database_connection", "Database Connection", secret_url=True, nova_mask=True),
    Column("disabled", "Disabled"),
]


def map_cell0(dbs: Databases, *, database_connection: str | None = None
              ) -> Result[MapCell0Data, None]:
    """Map cell0 (fixed UUID, ``none:///``); its URL defaults to ``[database]`` + ``_cell0``.

    Exit 0 mapped or already mapped, 1 an invalid URL. The work is
    cellctl.cells.cell0's, which ``simple_cell_setup`` runs too."""
    from cellctl.cells.cell0 import map_cell0 as map_cell0_core

    return map_cell0_core(dbs, database_connection=database_connection)


def create_cell(
    dbs: Databases,
    *,
    name: str | None = None,
    transport_url: str | None = None,
    database_connection: str | None = None,
    disabled: bool = False,
    verbose: bool = False,
) -> Result[CreateCellData, None]:
    result: Result[CreateCellData, None] = Result()
    transport = resolve_transport_url(dbs, transport_url, result)
    if transport is None:
        return result
    argument = dbs.settings.argument("database_connection", "--database_connection")
    database = url_or_fallback(
        database_connection, dbs.settings.database_connection, argument, result
    )
    if not database:
        return result.error(
            f"Must specify {argument} if [database]/connection is not set in the "
            "configuration file.", CreateCellExit.BAD_URL,
        )
    invalid = invalid_urls(dbs, None, database)
    if invalid:
        return result.error(invalid, CreateCellExit.BAD_URL)

    cell_uuid = new_uuid()
    with write_transaction(dbs.api, lock=CELL_LOCK) as conn:
        other = _cell_using(conn, dbs, transport, database, exclude=None)
        if other is not None:
            return result.error(_duplicate_message(other), CreateCellExit.DUPLICATE)
        insert_cell(conn, cell_uuid, name, transport, database, disabled=disabled)
    if verbose:
        result.info(cell_uuid)
    result.data = {"uuid": cell_uuid, "name": name, "disabled": disabled}
    return result


def list_cells(dbs: Databases) -> Result[None, CellRow]:
    """All cells by name (unnamed first), then creation order; URLs template-expanded."""
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm

    with dbs.api.connect() as conn:
        rows = list(conn.execute(
            select(cm.c.id, cm.c.name, cm.c.uuid, cm.c.transport_url,
                   cm.c.database_connection, cm.c.disabled)
        ))
    rows.sort(key=lambda r: (r.name or "", r.id))
    return Result(table=Table(CELL_COLUMNS, [
        {
            "name": r.name,
            "uuid": r.uuid,
            "transport_url": dbs.expand_transport_url(r.transport_url),
            "database_connection": dbs.expand_database_url(r.database_connection),
            "disabled": bool(r.disabled),
        }
        for r in rows
    ]))


def update_cell(
    dbs: Databases,
    *,
    cell_uuid: str,
    name: str | None = None,
    transport_url: str | None = None,
    database_connection: str | None = None,
    disable: bool = False,
    enable: bool = False,
) -> Result[UpdateCellData, None]:
    """Change what is named, and as nova-manage does, take an URL not given from
    the configuration when it is set there (saying so); nothing is written unless
    every check passes."""
    from cellctl.tables.api import cell_mappings as cm

    result: Result[UpdateCellData, None] = Result()
    with write_transaction(dbs.api, lock=CELL_LOCK) as conn:
        cell = load_cell(conn, result, cell_uuid, UpdateCellExit.NOT_FOUND)
        if cell is None:
            return result
        uuid = cell.uuid
        # nova-manage's order: the transport notice, then the database one.
        transport_url = url_or_fallback(
            transport_url, dbs.settings.transport_url,
            dbs.settings.argument("transport_url", "--transport-url"), result)
        database_connection = url_or_fallback(
            database_connection, dbs.settings.database_connection,
            dbs.settings.argument("database_connection", "--database_connection"), result)
        if transport_url is not None or database_connection is not None:
            invalid = invalid_urls(dbs, transport_url, database_connection)
            if invalid:
                return result.error(invalid, UpdateCellExit.INVALID_URL)
            other = _cell_using(conn, dbs, transport_url, database_connection, exclude=cell.id)
            if other is not None:
                return result.error(_duplicate_message(other), UpdateCellExit.DUPLICATE)
        if disable and enable:
            return result.error("Cell cannot be disabled and enabled at the same time.",
                                UpdateCellExit.DISABLE_AND_ENABLE)
        if (disable or enable) and is_cell0(uuid):
            return result.error("Cell0 cannot be disabled.", UpdateCellExit.CELL0_DISABLE)

        changes: dict[str, Any] = {}
        if name:  # as nova-manage: an empty --name changes nothing
            changes["name"] = name
        if transport_url is not None:
            changes["transport_url"] = transport_url
        if database_connection is not None:
            changes["database_connection"] = database_connection
        if disable or enable:
            if bool(cell.disabled) == disable:
                state = "disabled" if disable else "enabled"
                result.info(f"Cell {uuid} is already {state}")
            else:
                changes["disabled"] = disable
        if changes:
            # A failed save raises DatabaseError; update_cell's failure code is 2.
            conn.execute(
                cm.update().where(cm.c.id == cell.id).values(updated_at=utcnow(), **changes)
            )
        result.data = {"uuid": uuid, "changed": sorted(changes)}
    return result


def delete_cell(dbs: Databases, *, cell_uuid: str, force: bool = False,
                dry_run: bool = False) -> Result[DeleteCellData, None]:
    """Delete a cell mapping; refuse while hosts (without --force) or live instances remain.

    With --force the cell's host and instance mappings go too, and its compute
    nodes are marked unmapped first, so a later discover_hosts finds them again.

    ``dry_run``: write nothing; say which hosts, instances (live, deleted but
    not archived), services and compute nodes stand in the way or would remain,
    and what to run first; exit with the code the delete would have. A refusal
    carries the same reasons in ``data`` (JSON) and prints nothing more than before.
    """
    from sqlalchemy import delete, exists, func, select

    from cellctl.tables.api import cell_mappings as cm
    from cellctl.tables.api import host_mappings as hm
    from cellctl.tables.api import instance_mappings as im

    result: Result[DeleteCellData, None] = Result()
    with dbs.api.connect() as conn:
        cell = load_cell(conn, result, cell_uuid, DeleteCellExit.NOT_FOUND)
        if cell is None:
            return result
        uuid = cell.uuid
        hosts = sorted(conn.execute(select(hm.c.host).where(hm.c.cell_id == cell.id)).scalars())
        instance_mappings = int(conn.execute(
            select(func.count()).select_from(im).where(im.c.cell_id == cell.id)).scalar() or 0)
    has_hosts, has_instance_mappings = bool(hosts), bool(instance_mappings)
    if dry_run or has_hosts or has_instance_mappings:
        result.data, lines = _explain_cell(dbs, cell, hosts, instance_mappings, force, dry_run)
        if dry_run:
            for line in lines:
                result.info(line)
    if has_hosts and not force:
        return result.error(f"There are existing hosts mapped to cell with uuid {uuid}.",
                            DeleteCellExit.HAS_HOSTS)
    if has_instance_mappings:
        if _has_living_instances(dbs, cell):
            return result.error(
                f"There are existing instances mapped to cell with uuid {uuid}.",
                DeleteCellExit.HAS_INSTANCES
            )
        if not force:
            result.error(
                f"There are instance mappings to cell with uuid {uuid}, but all instances "
                "have been deleted in the cell.", DeleteCellExit.HAS_INSTANCE_MAPPINGS,
            )
            return result.error(
                "So execute 'nova-manage db archive_deleted_rows' to delete the instance "
                "mappings.", DeleteCellExit.HAS_INSTANCE_MAPPINGS,
            )
    if dry_run:
        return result
    if has_hosts:
        _unmap_compute_nodes(dbs, cell)
    with write_transaction(dbs.api, lock=CELL_LOCK) as conn:
        # Re-checked under the lock: a host mapped since the first look blocks
        # a delete without --force instead of failing on the foreign key.
        if not force and conn.execute(select(exists().where(hm.c.cell_id == cell.id))).scalar():
            return result.error(f"There are existing hosts mapped to cell with uuid {uuid}.",
                                DeleteCellExit.HAS_HOSTS)
        removed_instances = conn.execute(delete(im).where(im.c.cell_id == cell.id)).rowcount
        removed_hosts = conn.execute(delete(hm).where(hm.c.cell_id == cell.id)).rowcount
        conn.execute(delete(cm).where(cm.c.id == cell.id))
    result.data = {
        "uuid": uuid,
        "deleted": True,
        "host_mappings_deleted": removed_hosts,
        "instance_mappings_deleted": removed_instances,
    }
    return result


def _explain_cell(dbs: Databases, cell: Any, hosts: list[str], instance_mappings: int,
                  force: bool, dry_run: bool) -> tuple[DeleteCellData, list[str]]:
    """What is in the cell and what to run first, for ``--dry-run`` and a refusal's JSON,
    and the text for people. A cell whose database cannot be read is
    explained from the API database alone, and says so.
    """
    from cellctl.cells.reach import CellUnreachable, cell_access
    from cellctl.cells.usage import (
        CellContents,
        cell_advice,
        cell_contents,
        describe,
        numbered,
    )

    ref = CellRef(cell.id, cell.uuid, cell.name, cell.database_connection)
    data: DeleteCellData = {"uuid": cell.uuid, "name": cell.name, "deleted": False,
                            "dry_run": dry_run, "force": force, "hosts": hosts,
                            "instance_mappings": instance_mappings}
    lines = [f"The {ref.label}: {len(hosts)} mapped host(s)"
             + (f" ({', '.join(hosts)})" if hosts else "")
             + f", {instance_mappings} instance mapping(s)."]
    contents = CellContents()
    if not ref.is_cell0 or instance_mappings:
        try:
            with cell_access(ref), cell_database(dbs, ref).connect() as conn:
                contents = cell_contents(conn)
        except CellUnreachable as exc:
            data["cell_database_error"] = str(exc)
            lines.append(f"The cell database could not be read: {exc}")
    reasons = cell_advice(ref.label, contents, hosts, instance_mappings)
    data = {**data, **contents.as_dict(), "reasons": reasons}
    lines += describe(f"in {ref.label}", contents) + numbered(reasons)
    return data, lines


def _has_living_instances(dbs: Databases, cell: Any) -> bool:
    from sqlalchemy import exists, select

    from cellctl.tables.cell import instances

    with cell_database(dbs, cell).connect() as conn:
        return bool(conn.execute(select(exists().where(instances.c.deleted == 0))).scalar())


def _unmap_compute_nodes(dbs: Databases, cell: Any) -> None:
    with cell_database(dbs, cell).begin() as conn:
        from cellctl.mappings.hosts import mark_hosts_unmapped

        mark_hosts_unmapped(conn)


def _cell_using(
    conn: Connection,
    dbs: Databases,
    transport: str | None,
    database: str | None,
    *,
    exclude: int | None,
) -> str | None:
    """UUID of another cell with the same transport URL or database, compared as Nova
    compares them: the other cells' URLs expanded, the wanted ones as given. So a
    template never counts as a duplicate (Nova bug 1923899; cellctl's own
    ``cell ensure`` is where that is fixed, not here under nova-manage's name)."""
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm

    wanted_transport, wanted_database = transport, database
    rows: Iterable[Any] = conn.execute(
        select(cm.c.id, cm.c.uuid, cm.c.transport_url, cm.c.database_connection).order_by(cm.c.id)
    )
    for row in rows:
        if row.id == exclude:
            continue
        if (wanted_transport is not None
                and dbs.expand_transport_url(row.transport_url) == wanted_transport) or (
            wanted_database is not None
                and dbs.expand_database_url(row.database_connection) == wanted_database
        ):
            return str(row.uuid)
    return None


def _duplicate_message(other_uuid: str) -> str:
    return (
        "The specified transport_url and/or database_connection combination already exists "
        f"for another cell with uuid {other_uuid}."
    )
