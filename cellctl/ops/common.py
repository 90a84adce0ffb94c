"""Small helpers shared by the operations: UUIDs, time, cell lookup, URL fallbacks."""

from __future__ import annotations

import datetime
import uuid as uuidlib
from typing import TYPE_CHECKING

from cellctl.errors import InvalidURL
from cellctl.result import Result
from cellctl.settings import Setting
from cellctl.urls import validate_transport_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine, Row

    from cellctl.db import Databases

CELL0_UUID = "00000000-0000-0000-0000-000000000000"
CELL0_NAME = "cell0"
CELL0_TRANSPORT_URL = "none:///"


def utcnow() -> datetime.datetime:
    """Naive UTC, as Nova stores every timestamp."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def canonical_uuid(value: str | None) -> str | None:
    """The UUID in Nova's form (lower case, dashed), or None if it is not one."""
    if not value:
        return None
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        return None


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def is_cell0(cell_uuid: str) -> bool:
    return cell_uuid == CELL0_UUID


def find_cell(conn: Connection, cell_uuid: str) -> Row | None:
    from cellctl.tables.api import cell_mappings

    return conn.execute(
        cell_mappings.select().where(cell_mappings.c.uuid == cell_uuid)
    ).first()


def insert_cell(conn: Connection, cell_uuid: str, name: str | None, transport_url: str | None,
                database_connection: str, *, disabled: bool = False) -> int:
    """Add one row to ``cell_mappings``; its id."""
    from cellctl.tables.api import cell_mappings

    return conn.execute(
        cell_mappings.insert().values(
            uuid=cell_uuid, name=name, transport_url=transport_url,
            database_connection=database_connection, disabled=disabled, created_at=utcnow(),
        )
    ).inserted_primary_key[0]


def cell_not_found(result: Result, cell_uuid: str, code: int) -> Result:
    return result.error(f"Cell with uuid {cell_uuid} was not found.", code)


def lookup_cell_uuid(result: Result, value: str, code: int) -> str | None:
    """Canonical UUID of ``value``; records the not-found error in ``result`` if malformed."""
    cell_uuid = canonical_uuid(value)
    if cell_uuid is None:
        result.error(f"Cell with uuid {value} was not found (not a valid UUID).", code)
    return cell_uuid


def load_cell(conn: Connection, result: Result, value: str, code: int) -> Row | None:
    """The cell mapping named by ``value``; None, with the not-found error recorded in
    ``result`` under ``code``, when it is malformed or unknown."""
    cell_uuid = lookup_cell_uuid(result, value, code)
    if cell_uuid is None:
        return None
    cell = find_cell(conn, cell_uuid)
    if cell is None:
        cell_not_found(result, cell_uuid, code)
    return cell


def url_or_fallback(
    flag_value: str | None, setting: Setting, flag: str, result: Result
) -> str | None:
    """The URL given on the command line, else the configured one (saying so, as Nova does)."""
    if flag_value:
        return flag_value
    if setting.value:
        result.info(
            f"{flag} not provided in the command line, using the value from {setting.source}"
        )
    return setting.value


def resolve_transport_url(dbs: Databases, transport_url: str | None, result: Result) -> str | None:
    """The transport URL given, else the configured one; None (error 1 recorded) if missing
    or invalid. Templates are validated expanded and returned as written."""
    transport = url_or_fallback(transport_url, dbs.settings.transport_url, "--transport-url",
                                result)
    if not transport:
        result.error("Must specify --transport-url if [DEFAULT]/transport_url is not set in "
                     "the configuration file.", 1)
        return None
    try:
        validate_transport_url(dbs.expand_transport_url(transport) or "")
    except InvalidURL as exc:
        result.error(f"Invalid transport URL: {exc}", 1)
        return None
    return transport


def cell_label(name: str | None, cell_uuid: str) -> str:
    return f"cell '{name}' ({cell_uuid})" if name else f"cell {cell_uuid}"


def cell_database(dbs: Databases, cell: Row) -> Engine:
    """The database of a ``cell_mappings`` row (uuid, name, database_connection),
    named in errors as the cell is everywhere."""
    return dbs.cell(cell.database_connection, f"database of {cell_label(cell.name, cell.uuid)}")
