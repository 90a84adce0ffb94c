"""Mapping cell0: the core of ``map_cell0``, which ``simple_cell_setup`` runs too, and
whether its schema is Nova's to create (``db sync`` and ``simple_cell_setup`` ask)."""

from __future__ import annotations

from enum import IntEnum

from cellctl import migrate
from cellctl.cells.refs import CELL0_NAME, CELL0_TRANSPORT_URL, CELL0_UUID, find_cell, insert_cell
from cellctl.db import Databases
from cellctl.errors import CellctlError, InvalidURL
from cellctl.result import Result
from cellctl.results import MapCell0Data
from cellctl.urls import derive_cell0_url, validate_database_url
from cellctl.writes.locks import CELL_LOCK
from cellctl.writes.transactions import write_transaction


class MapCell0Exit(IntEnum):
    """``map_cell0``'s exit codes."""

    OK = 0  # mapped now, or already
    INVALID_URL = 1


def map_cell0(dbs: Databases, *, database_connection: str | None = None
              ) -> Result[MapCell0Data, None]:
    """Map cell0 (fixed UUID, ``none:///``); its URL defaults to ``[database]`` + ``_cell0``."""
    from sqlalchemy.exc import IntegrityError

    result: Result[MapCell0Data, None] = Result(data={"uuid": CELL0_UUID})
    try:
        url = database_connection or derive_cell0_url(dbs.settings.database_connection.value)
        validate_database_url(url)
    except InvalidURL as exc:
        return result.error(str(exc), MapCell0Exit.INVALID_URL)
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


def beside_nova(dbs: Databases) -> bool:
    """Whether ``[database]`` has Nova's schema: an empty cell0 is then Nova's to create."""
    local = dbs.settings.database_connection.value
    if not local:
        return False
    try:
        engine = dbs.engine_for_sync(local, "cell database ([database] connection)")
    except CellctlError:
        return False
    return migrate.is_nova_deployment(engine)
