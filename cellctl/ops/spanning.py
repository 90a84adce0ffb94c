"""Commands that span cells: which cells to visit, and a dead cell that must not stop them.

A command that reads every cell wraps each cell's database work in
``cell_access``; a failure there becomes ``CellUnreachable``, which the command
records with ``Result.unreachable`` before going on to the next cell. Errors
from the API database are not caught: without it no command can go on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cellctl.errors import CellctlError
from cellctl.ops.common import cell_label, cell_not_found, is_cell0, lookup_cell_uuid
from cellctl.result import Result

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from cellctl.db import Databases


# Seconds a command spanning cells waits for one answer from a cell's server
# before it counts the cell as unreachable. Longer than InnoDB's default lock
# wait (50 s), so a server that is merely busy or locked answers first.
STALLED_SERVER_TIMEOUT = 60.0


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


class CellUnreachable(CellctlError):
    """A cell's database could not be used; ``message`` says why (masked)."""

    def __init__(self, cell: CellRef, reason: CellctlError) -> None:
        super().__init__(str(reason))
        self.cell = cell


def select_cells(
    conn: Connection, result: Result, cell_uuid: str | None, *, not_found_code: int
) -> list[CellRef] | None:
    """The one cell named by ``cell_uuid``, else every cell in creation order.

    A malformed or unknown UUID is recorded in ``result`` with
    ``not_found_code`` and gives None.
    """
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm

    query = select(cm.c.id, cm.c.uuid, cm.c.name, cm.c.database_connection,
                   cm.c.transport_url, cm.c.disabled).order_by(cm.c.id)
    if cell_uuid is not None:
        wanted = lookup_cell_uuid(result, cell_uuid, not_found_code)
        if wanted is None:
            return None
        query = query.where(cm.c.uuid == wanted)
    cells = [CellRef(r.id, r.uuid, r.name, r.database_connection, r.transport_url,
                     bool(r.disabled)) for r in conn.execute(query)]
    if cell_uuid is not None and not cells:
        cell_not_found(result, str(wanted), not_found_code)
        return None
    return cells


def cell_engine(dbs: Databases, cell: CellRef, timeout: float | None = None) -> Engine:
    """The cell's database; call inside ``cell_access`` (opening it may fail).

    ``timeout`` bounds connecting, if the engine is made now; such an engine (a
    command spanning cells) also gives up on a server that stops answering after
    STALLED_SERVER_TIMEOUT.
    """
    return dbs.cell(cell.database_connection, f"database of {cell.label}",
                    connect_timeout=timeout,
                    read_timeout=None if timeout is None else STALLED_SERVER_TIMEOUT)


@contextlib.contextmanager
def cell_access(cell: CellRef) -> Iterator[None]:
    """Turn any failure to use ``cell``'s database inside the block into CellUnreachable."""
    try:
        yield
    except CellUnreachable:
        raise
    except CellctlError as exc:
        raise CellUnreachable(cell, exc) from None
