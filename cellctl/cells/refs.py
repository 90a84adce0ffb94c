"""Cells as the operations see them: finding, loading, inserting and opening them.

A cell is a ``cell_mappings`` row; ``CellRef`` is the part of it that
commands pass around. ``cell_database`` is the one way to open a cell's
database, named in errors the same way by every command.

A cell is named by UUID (nova-manage's ``--cell_uuid``) or, where the caller
says so by passing a ``CellName`` (cellctl's ``--cell``), by UUID or name:
``resolve_cell_uuid`` is the one resolver. An unknown name is the command's
"not found"; a name two cells share is AMBIGUOUS_CELL, naming their UUIDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from cellctl.clock import utcnow
from cellctl.ids import canonical_uuid
from cellctl.result import Result

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine, Row

    from cellctl.db import Databases

CELL0_UUID = "00000000-0000-0000-0000-000000000000"
CELL0_NAME = "cell0"
CELL0_TRANSPORT_URL = "none:///"

# Seconds a command spanning cells waits for one answer from a cell's server
# before it counts the cell as unreachable. Longer than InnoDB's default lock
# wait (50 s), so a server that is merely busy or locked answers first.
STALLED_SERVER_TIMEOUT = 60.0

# Exit code of every command given a cell name that two or more cells share.
AMBIGUOUS_CELL = 9


class CellName(str):
    """A cell as the user named it with ``--cell``: a UUID, else a cell's exact name.

    A plain ``str`` is a UUID only (nova-manage's ``--cell_uuid``); the shared
    look-ups (``load_cell``, ``select_cells``, ``resolve_cell_uuid``) also try
    names for a CellName.
    """


def is_cell0(cell_uuid: str) -> bool:
    return cell_uuid == CELL0_UUID


def cell_label(name: str | None, cell_uuid: str) -> str:
    """How every message names a cell."""
    return f"cell '{name}' ({cell_uuid})" if name else f"cell {cell_uuid}"


@dataclass(frozen=True)
class CellRef:
    id: int
    uuid: str
    name: str | None
    database_connection: str | None  # as stored: may be a Nova template
    transport_url: str | None = None  # as stored
    disabled: bool = False

    @property
    def label(self) -> str:
        return cell_label(self.name, self.uuid)

    @property
    def is_cell0(self) -> bool:
        return is_cell0(self.uuid)


class CellLike(Protocol):
    """A CellRef or a ``cell_mappings`` row."""

    @property
    def uuid(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def database_connection(self) -> str | None: ...


def cell_database(dbs: Databases, cell: CellLike, timeout: float | None = None) -> Engine:
    """The database of ``cell``, named in errors as the cell is everywhere.

    ``timeout`` bounds connecting, if the engine is made now; such an engine (a
    command spanning cells) also gives up on a server that stops answering after
    STALLED_SERVER_TIMEOUT.
    """
    return dbs.cell(cell.database_connection, f"database of {cell_label(cell.name, cell.uuid)}",
                    connect_timeout=timeout,
                    read_timeout=None if timeout is None else STALLED_SERVER_TIMEOUT)


def find_cell(conn: Connection, cell_uuid: str) -> Row | None:
    from cellctl.tables.api import cell_mappings

    return conn.execute(
        cell_mappings.select().where(cell_mappings.c.uuid == cell_uuid)
    ).first()


def insert_cell(conn: Connection, cell_uuid: str, name: str | None, transport_url: str | None,
                database_connection: str, *, disabled: bool = False) -> int:
    """Add one row to ``cell_mappings``; its id."""
    from cellctl.tables.api import cell_mappings

    key = conn.execute(
        cell_mappings.insert().values(
            uuid=cell_uuid, name=name, transport_url=transport_url,
            database_connection=database_connection, disabled=disabled, created_at=utcnow(),
        )
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


def cell_not_found(result: Result, cell_uuid: str, code: int) -> Result:
    return result.error(f"Cell with uuid {cell_uuid} was not found.", code)


def cell_has_no_mapping(result: Result, cell_uuid: str) -> Result:
    """What nova-manage shows when a command that looks a cell up crashes on an
    unknown one (``CellMappingNotFound``): its crash prefix, then the exception's
    line instead of the traceback; exit 255."""
    return result.crash("CellMappingNotFound", f"Cell {cell_uuid} has no mapping.")


def lookup_cell_uuid(result: Result, value: str, code: int) -> str | None:
    """Canonical UUID of ``value``; records the not-found error in ``result`` if malformed."""
    cell_uuid = canonical_uuid(value)
    if cell_uuid is None:
        result.error(f"Cell with uuid {value} was not found (not a valid UUID).", code)
    return cell_uuid


def resolve_cell_uuid(conn: Connection, result: Result, value: str, code: int) -> str | None:
    """The UUID of the cell ``value`` names; None with the error recorded in ``result``.

    A plain ``str`` must be a UUID (it is not checked to exist: the caller's
    own look-up says "not found" its way). A ``CellName`` is a UUID of an
    existing cell, else the exact name of one cell: unknown is ``code`` (worded
    as for a UUID), shared by several cells AMBIGUOUS_CELL with their UUIDs.
    """
    if not isinstance(value, CellName):
        return lookup_cell_uuid(result, value, code)
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm

    as_uuid = canonical_uuid(value)
    if as_uuid is not None and find_cell(conn, as_uuid) is not None:
        return as_uuid
    # Compared again here: MySQL's default collation matches names without case.
    named = [r.uuid for r in conn.execute(
        select(cm.c.uuid, cm.c.name).where(cm.c.name == str(value)).order_by(cm.c.id)
    ) if r.name == str(value)]
    if len(named) == 1:
        return str(named[0])
    if len(named) > 1:
        result.error(f"Cell name '{value}' is ambiguous: cells {', '.join(named)} share it; "
                     "name the cell by UUID.", AMBIGUOUS_CELL)
        return None
    if as_uuid is None:
        result.error(f"Cell with uuid or name {value} was not found.", code)
    else:
        cell_not_found(result, as_uuid, code)
    return None


def load_cell(conn: Connection, result: Result, value: str, code: int) -> Row | None:
    """The cell mapping named by ``value`` (a UUID; a CellName: a UUID or name); None,
    with the not-found (or ambiguous) error recorded in ``result``, when there is none."""
    cell_uuid = resolve_cell_uuid(conn, result, value, code)
    if cell_uuid is None:
        return None
    cell = find_cell(conn, cell_uuid)
    if cell is None:
        cell_not_found(result, cell_uuid, code)
    return cell


def select_cells(
    conn: Connection, result: Result, cell_uuid: str | None, *, not_found_code: int
) -> list[CellRef] | None:
    """The one cell named by ``cell_uuid`` (a CellName: by UUID or name), else every cell
    in creation order.

    A malformed or unknown UUID (or name) is recorded in ``result`` with
    ``not_found_code`` and gives None.
    """
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm

    query = select(cm.c.id, cm.c.uuid, cm.c.name, cm.c.database_connection,
                   cm.c.transport_url, cm.c.disabled).order_by(cm.c.id)
    if cell_uuid is not None:
        wanted = resolve_cell_uuid(conn, result, cell_uuid, not_found_code)
        if wanted is None:
            return None
        query = query.where(cm.c.uuid == wanted)
    cells = [CellRef(r.id, r.uuid, r.name, r.database_connection, r.transport_url,
                     bool(r.disabled)) for r in conn.execute(query)]
    if cell_uuid is not None and not cells:
        cell_not_found(result, str(wanted), not_found_code)
        return None
    return cells
