"""Small helpers shared by the operations: UUIDs, time, cell lookup, URL fallbacks."""

from __future__ import annotations

import datetime
import uuid as uuidlib
from typing import TYPE_CHECKING

from cellctl.result import Result
from cellctl.settings import Setting

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

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


def cell_not_found(result: Result, cell_uuid: str, code: int) -> Result:
    return result.error(f"Cell with uuid {cell_uuid} was not found.", code)


def lookup_cell_uuid(result: Result, value: str, code: int) -> str | None:
    """Canonical UUID of ``value``; records the not-found error in ``result`` if malformed."""
    cell_uuid = canonical_uuid(value)
    if cell_uuid is None:
        result.error(f"Cell with uuid {value} was not found (not a valid UUID).", code)
    return cell_uuid


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


def cell_label(name: str | None, cell_uuid: str) -> str:
    return f"cell '{name}' ({cell_uuid})" if name else f"cell {cell_uuid}"
