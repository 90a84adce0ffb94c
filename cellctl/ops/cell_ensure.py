"""``cell ensure``: a cell with this name exists with these URLs and this state.

Declarative and idempotent, for deployment tools that today scrape
``list_cells`` and call ``create_cell`` or ``update_cell``: it creates the
cell, or changes exactly the fields given that differ, or does nothing, and
says which. The look-up and the write are one transaction under the cell
lock, so two runs at once for one name leave one cell.

- URLs are stored as given (Nova templates included) and only taken from the
  configuration with ``from_config``; a field not given is left as it is.
- Before writing, the URLs are compared, expanded on both sides, with every
  other cell's: a database or queue another cell uses is a conflict naming it
  (Nova's duplicate check compares the raw template, bug 1923899).
- ``name`` ``cell0`` is cell0: its fixed UUID, transport ``none:///``, its
  database by default ``[database]`` with ``_cell0`` added (``from_config``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cellctl.cells.refs import (
    AMBIGUOUS_CELL,
    CELL0_NAME,
    CELL0_TRANSPORT_URL,
    CELL0_UUID,
    CellRef,
    insert_cell,
)
from cellctl.cells.sharing import user_of
from cellctl.cells.urls import invalid_urls
from cellctl.clock import utcnow
from cellctl.errors import InvalidURL
from cellctl.ids import new_uuid
from cellctl.result import Result
from cellctl.results import CellEnsureData
from cellctl.urls import derive_cell0_url, mask
from cellctl.writes.locks import CELL_LOCK
from cellctl.writes.transactions import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from cellctl.db import Databases

UNCHANGED = 0
BAD_INPUT = 1
CONFLICT = 3
CREATED = 10
UPDATED = 11
# AMBIGUOUS_CELL (9): two or more cells already have the name.


def ensure_cell(
    dbs: Databases,
    *,
    name: str,
    transport_url: str | None = None,
    database_connection: str | None = None,
    disabled: bool | None = None,
    from_config: bool = False,
) -> Result[CellEnsureData, None]:
    """Make the cell called ``name`` exist as described; ``data["outcome"]`` says what was done.

    Exit 0 unchanged, 10 created, 11 updated (``data["changed"]`` lists the
    fields), 1 bad input (an invalid URL, a URL missing to create the cell,
    cell0 disabled or given a queue), 3 a URL another cell uses (named in the
    message and ``data["conflict"]``), 9 the name is ambiguous.
    """
    result: Result[CellEnsureData, None] = Result()
    if not name:
        return result.error(f"{dbs.settings.argument('name', '--name')} must not be empty.",
                            BAD_INPUT)
    is_cell0 = name == CELL0_NAME
    if from_config:
        settings = dbs.settings
        if database_connection is None:
            try:
                database_connection = (derive_cell0_url(settings.database_connection.value)
                                       if is_cell0 else settings.database_connection.value)
            except InvalidURL as exc:
                return result.error(str(exc), BAD_INPUT)
        if transport_url is None and not is_cell0:
            transport_url = settings.transport_url.value
    if is_cell0:
        if transport_url not in (None, CELL0_TRANSPORT_URL):
            return result.error(f"cell0 has no queue: its transport URL is "
                                f"{CELL0_TRANSPORT_URL}.", BAD_INPUT)
        if disabled:
            return result.error("Cell0 cannot be disabled.", BAD_INPUT)
        transport_url = CELL0_TRANSPORT_URL
    invalid = invalid_urls(dbs, transport_url, database_connection)
    if invalid:
        return result.error(invalid, BAD_INPUT)

    with write_transaction(dbs.api, lock=CELL_LOCK) as conn:
        cells = _cells(conn)
        if is_cell0:
            named = [c for c in cells if c.is_cell0]
        else:
            named = [c for c in cells if c.name == name and not c.is_cell0]
        if len(named) > 1:
            return result.error(
                f"Cell name '{name}' is ambiguous: cells {', '.join(c.uuid for c in named)} "
                "share it; rename or delete all but one (update_cell --cell_uuid).",
                AMBIGUOUS_CELL)
        current = named[0] if named else None
        other = user_of(dbs, cells, transport_url=transport_url,
                        database_connection=database_connection,
                        exclude=current.uuid if current else None)
        if other is not None:
            cell, kind = other
            result.data = {"outcome": "conflict", "name": name,
                           "uuid": current.uuid if current else None,
                           "conflict": {"uuid": cell.uuid, "name": cell.name, "kind": kind}}
            return result.error(f"The {kind} given for cell '{name}' is already used by "
                                f"{cell.label}.", CONFLICT)
        if current is None:
            if not transport_url or not database_connection:
                arg = dbs.settings.argument
                missing = [arg(keyword, flag) for keyword, flag, url in (
                    ("transport_url", "--transport-url", transport_url),
                    ("database_connection", "--database_connection", database_connection),
                ) if not url]
                return result.error(
                    f"Cell '{name}' does not exist; to create it give {' and '.join(missing)} "
                    f"(or {arg('from_config', '--from-config')}).", BAD_INPUT)
            cell_uuid = CELL0_UUID if is_cell0 else new_uuid()
            insert_cell(conn, cell_uuid, name, transport_url, database_connection,
                        disabled=bool(disabled))
            return _done(result, "created", CREATED, name, cell_uuid, list(_FIELDS),
                         transport_url, database_connection, bool(disabled))
        changes = _changes(current, transport_url, database_connection, disabled)
        if changes:
            _update(conn, current, changes)
        after = {**{"transport_url": current.transport_url,
                    "database_connection": current.database_connection,
                    "disabled": current.disabled}, **changes}
    return _done(result, "updated" if changes else "unchanged",
                 UPDATED if changes else UNCHANGED, name, current.uuid, sorted(changes),
                 after["transport_url"], after["database_connection"], bool(after["disabled"]))


_FIELDS = ("transport_url", "database_connection", "disabled")


def _cells(conn: Connection) -> list[CellRef]:
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm

    return [CellRef(r.id, r.uuid, r.name, r.database_connection, r.transport_url,
                    bool(r.disabled))
            for r in conn.execute(select(cm.c.id, cm.c.uuid, cm.c.name, cm.c.database_connection,
                                         cm.c.transport_url, cm.c.disabled).order_by(cm.c.id))]


def _changes(cell: CellRef, transport_url: str | None, database_connection: str | None,
             disabled: bool | None) -> dict[str, Any]:
    """The fields given whose stored value differs (URLs compared as stored: a template
    and the URL it expands to are different things to store)."""
    changes: dict[str, Any] = {}
    if transport_url is not None and transport_url != cell.transport_url:
        changes["transport_url"] = transport_url
    if database_connection is not None and database_connection != cell.database_connection:
        changes["database_connection"] = database_connection
    if disabled is not None and disabled != cell.disabled:
        changes["disabled"] = disabled
    return changes


def _update(conn: Connection, cell: CellRef, changes: dict[str, Any]) -> None:
    from cellctl.tables.api import cell_mappings as cm

    conn.execute(cm.update().where(cm.c.id == cell.id).values(updated_at=utcnow(), **changes))


def _done(result: Result, outcome: str, code: int, name: str, cell_uuid: str,
          changed: list[str], transport_url: str | None, database_connection: str | None,
          disabled: bool) -> Result[CellEnsureData, None]:
    result.code = code
    result.data = {"outcome": outcome, "name": name, "uuid": cell_uuid, "changed": changed,
                   "transport_url": mask(transport_url),
                   "database_connection": mask(database_connection), "disabled": disabled}
    what = f" ({', '.join(changed)})" if outcome == "updated" else ""
    return result.info(f"{outcome}{what}: cell '{name}' {cell_uuid}")
