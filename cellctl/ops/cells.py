"""Cell mappings: map_cell0, create_cell, list_cells, update_cell, delete_cell."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cellctl.cells.refs import (
    CELL0_NAME,
    CELL0_TRANSPORT_URL,
    CELL0_UUID,
    cell_database,
    find_cell,
    insert_cell,
    is_cell0,
    load_cell,
)
from cellctl.cells.urls import resolve_transport_url, url_or_fallback
from cellctl.clock import utcnow
from cellctl.db import Databases
from cellctl.errors import InvalidURL
from cellctl.ids import new_uuid
from cellctl.mappings.hosts import mark_hosts_unmapped
from cellctl.result import Column, Result, Table
from cellctl.urls import derive_cell0_url, validate_database_url, validate_transport_url
from cellctl.writes.locks import CELL_LOCK
from cellctl.writes.transactions import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

CELL_COLUMNS = [
    Column("name", "Name"),
    Column("uuid", "UUID"),
    Column("transport_url", "Transport URL", secret_url=True, nova_mask=True),
    Column("database_connection", "Database Connection", secret_url=True, nova_mask=True),
    Column("disabled", "Disabled"),
]


def map_cell0(dbs: Databases, database_connection: str | None = None) -> Result:
    """Map cell0 (fixed UUID, ``none:///``); its URL defaults to ``[database]`` + ``_cell0``."""
    from sqlalchemy.exc import IntegrityError

    result = Result(data={"uuid": CELL0_UUID})
    try:
        url = database_connection or derive_cell0_url(dbs.settings.database_connection.value)
        validate_database_url(url)
    except InvalidURL as exc:
        return result.error(str(exc), 1)
    try:
        with write_transaction(dbs.api, lock=CELL_LOCK) as conn:
            if find_cell(conn, CELL0_UUID) is not None:
                result.data = {"uuid": CELL0_UUID, "created": False}
                return result.info("Cell0 is already setup")
            insert_cell(conn, CELL0_UUID, CELL0_NAME, CELL0_TRANSPORT_URL, url)
    except IntegrityError:
        # A concurrent run mapped it between our check and our insert.
        result.data = {"uuid": CELL0_UUID, "created": False}
        return result.info("Cell0 is already setup")
    result.data = {"uuid": CELL0_UUID, "created": True}
    return result


def create_cell(
    dbs: Databases,
    *,
    name: str | None = None,
    transport_url: str | None = None,
    database_connection: str | None = None,
    disabled: bool = False,
    verbose: bool = False,
) -> Result:
    result = Result()
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
            "configuration file.", 1,
        )
    invalid = _invalid_urls(dbs, None, database)
    if invalid:
        return result.error(invalid, 1)

    cell_uuid = new_uuid()
    with write_transaction(dbs.api, lock=CELL_LOCK) as conn:
        other = _cell_using(conn, dbs, transport, database, exclude=None)
        if other is not None:
            return result.error(_duplicate_message(other), 2)
        insert_cell(conn, cell_uuid, name, transport, database, disabled=disabled)
    if verbose:
        result.info(cell_uuid)
    result.data = {"uuid": cell_uuid, "name": name, "disabled": disabled}
    return result


def list_cells(dbs: Databases) -> Result:
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
    cell_uuid: str,
    *,
    name: str | None = None,
    transport_url: str | None = None,
    database_connection: str | None = None,
    disable: bool = False,
    enable: bool = False,
) -> Result:
    """Change what is named, and as nova-manage does, take an URL not given from
    the configuration when it is set there (saying so); nothing is written unless
    every check passes."""
    from cellctl.tables.api import cell_mappings as cm

    result = Result()
    with write_transaction(dbs.api, lock=CELL_LOCK) as conn:
        cell = load_cell(conn, result, cell_uuid, 1)
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
            invalid = _invalid_urls(dbs, transport_url, database_connection)
            if invalid:
                return result.error(invalid, 2)
            other = _cell_using(conn, dbs, transport_url, database_connection, exclude=cell.id)
            if other is not None:
                return result.error(_duplicate_message(other), 3)
        if disable and enable:
            return result.error("Cell cannot be disabled and enabled at the same time.", 4)
        if (disable or enable) and is_cell0(uuid):
            return result.error("Cell0 cannot be disabled.", 5)

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


def delete_cell(dbs: Databases, cell_uuid: str, *, force: bool = False) -> Result:
    """Delete a cell mapping; refuse while hosts (without --force) or live instances remain.

    With --force the cell's host and instance mappings go too, and its compute
    nodes are marked unmapped first, so a later discover_hosts finds them again.
    """
    from sqlalchemy import delete, exists, select

    from cellctl.tables.api import cell_mappings as cm
    from cellctl.tables.api import host_mappings as hm
    from cellctl.tables.api import instance_mappings as im

    result = Result()
    with dbs.api.connect() as conn:
        cell = load_cell(conn, result, cell_uuid, 1)
        if cell is None:
            return result
        uuid = cell.uuid
        has_hosts = conn.execute(select(exists().where(hm.c.cell_id == cell.id))).scalar()
        has_instance_mappings = conn.execute(
            select(exists().where(im.c.cell_id == cell.id))
        ).scalar()
    if has_hosts and not force:
        return result.error(f"There are existing hosts mapped to cell with uuid {uuid}.", 2)
    if has_instance_mappings:
        if _has_living_instances(dbs, cell):
            return result.error(
                f"There are existing instances mapped to cell with uuid {uuid}.", 3
            )
        if not force:
            result.error(
                f"There are instance mappings to cell with uuid {uuid}, but all instances "
                "have been deleted in the cell.", 4,
            )
            return result.error(
                "So execute 'nova-manage db archive_deleted_rows' to delete the instance "
                "mappings.", 4,
            )
    if has_hosts:
        _unmap_compute_nodes(dbs, cell)
    with write_transaction(dbs.api, lock=CELL_LOCK) as conn:
        # Re-checked under the lock: a host mapped since the first look blocks
        # a delete without --force instead of failing on the foreign key.
        if not force and conn.execute(select(exists().where(hm.c.cell_id == cell.id))).scalar():
            return result.error(f"There are existing hosts mapped to cell with uuid {uuid}.", 2)
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


def _has_living_instances(dbs: Databases, cell: Any) -> bool:
    from sqlalchemy import exists, select

    from cellctl.tables.cell import instances

    with cell_database(dbs, cell).connect() as conn:
        return bool(conn.execute(select(exists().where(instances.c.deleted == 0))).scalar())


def _unmap_compute_nodes(dbs: Databases, cell: Any) -> None:
    with cell_database(dbs, cell).begin() as conn:
        mark_hosts_unmapped(conn)


def _invalid_urls(dbs: Databases, transport: str | None, database: str | None) -> str | None:
    """The error line for the first invalid URL, or None. Templates are checked expanded."""
    try:
        if transport is not None:
            validate_transport_url(dbs.expand_transport_url(transport) or "")
    except InvalidURL as exc:
        return f"Invalid transport URL: {exc}"
    try:
        if database is not None:
            validate_database_url(dbs.expand_database_url(database) or "")
    except InvalidURL as exc:
        return str(exc)
    return None


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
