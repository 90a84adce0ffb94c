"""api_db sync/version and db sync/version: the schemas of every database cellctl uses."""

from __future__ import annotations

from dataclasses import dataclass

from cellctl import migrate
from cellctl.cells.cell0 import beside_nova
from cellctl.cells.refs import CELL0_UUID
from cellctl.db import Databases
from cellctl.errors import CellctlError, nova_error_text, nova_exception
from cellctl.result import Result
from cellctl.results import SchemaSyncData, SchemaVersionData, SyncedDatabase
from cellctl.urls import mask

# Exit codes of the schema commands: 0 ok, FAILED a schema could not be synced.
FAILED = 1


@dataclass(frozen=True)
class Target:
    label: str
    url: str
    cell0: bool = False


def api_db_sync(dbs: Databases, *, version: str | None = None
                ) -> Result[SchemaSyncData, None]:
    """nova-manage's outcomes: 0 synced, 255 (its crash) when the API database cannot be
    used or the revision is unknown."""
    return _sync_all(dbs, "api", [Target("API database", dbs.api_url)], version, crash=True)


def db_sync(dbs: Databases, *, version: str | None = None, all_cells: bool = False,
            local_cell: bool = False) -> Result[SchemaSyncData, None]:
    """Sync cell0 when mapped, then ``[database]``, and with ``all_cells`` every mapped
    cell; with ``local_cell`` (nova-manage's ``--local_cell``) ``[database]`` only.

    As nova-manage: cell0 first, and a cell0 that cannot be read or synced is its
    multi-line ``ERROR: Could not access cell0.`` text and exit 1, before ``[database]``
    is touched; ``[database]`` failing is its crash (255)."""
    result: Result[SchemaSyncData, None] = Result()
    done: list[SyncedDatabase] = []
    local = dbs.settings.database_connection.value
    nova_deployment = beside_nova(dbs)
    cells: list[Target] = []
    if not local_cell or all_cells:
        try:
            cells = _mapped_cells(dbs, result, all_cells)
        except CellctlError as exc:
            return result.error(_cell0_unreachable(exc), FAILED)
        cell0 = [t for t in cells if t.cell0]
        if cell0:
            synced = _sync_all(dbs, "cell", cell0, version, nova_deployment=nova_deployment,
                               cell0_text=True)
            result.messages.extend(synced.messages)
            if synced.code:
                result.code = synced.code
                return result
            done = synced.data["databases"] if synced.data else []
    if not local and not cells:
        return result.error(
            "No cell database to sync: set [database] connection or map cell0 first", FAILED
        )
    rest = [t for t in cells if not t.cell0]
    targets = [Target("cell database ([database] connection)", local)] if local else []
    synced = _sync_all(dbs, "cell", _unique(targets + rest), version,
                       nova_deployment=nova_deployment, crash=bool(local))
    synced.messages[:0] = result.messages
    if synced.data:
        synced.data["databases"][:0] = done
    return synced


def api_db_version(dbs: Databases) -> Result[SchemaVersionData, None]:
    return _version(migrate.schema_state(dbs.api, "api"), "API database")


def db_version(dbs: Databases) -> Result[SchemaVersionData, None]:
    return _version(migrate.schema_state(dbs.local_cell, "cell"), "cell database")


def _version(state: migrate.SchemaState, label: str) -> Result[SchemaVersionData, None]:
    result: Result[SchemaVersionData, None] = Result(data={"database": label, **state.as_dict()})
    result.info(f"{state.revision}")  # the revision alone on stdout, as nova-manage prints it
    if state.owner == "nova":
        result.note(f"The {label} schema is managed by Nova.")
    return result


def _mapped_cells(dbs: Databases, result: Result, all_cells: bool) -> list[Target]:
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm

    with dbs.api.connect() as conn:
        query = select(cm.c.uuid, cm.c.name, cm.c.database_connection).order_by(cm.c.id)
        if not all_cells:
            query = query.where(cm.c.uuid == CELL0_UUID)
        rows = conn.execute(query).all()
    if not any(r.uuid == CELL0_UUID for r in rows):
        # nova-manage prints this line, prefix included, on stdout
        result.info("WARNING: cell0 mapping not found - not syncing cell0.")
    return [
        Target(
            "cell0 database" if r.uuid == CELL0_UUID else f"database of cell {r.name or r.uuid}",
            dbs.expand_database_url(r.database_connection) or "",
            cell0=r.uuid == CELL0_UUID,
        )
        for r in rows
    ]


def _unique(targets: list[Target]) -> list[Target]:
    seen: set[str] = set()
    return [t for t in targets if not (t.url in seen or seen.add(t.url))]  # type: ignore[func-returns-value]


def _sync_all(dbs: Databases, kind: migrate.Kind, targets: list[Target],
              version: str | None, *, nova_deployment: bool = False, crash: bool = False,
              cell0_text: bool = False) -> Result[SchemaSyncData, None]:
    """``crash``: the first target's failure is nova-manage's crash (255);
    ``cell0_text``: a failure is nova-manage's ``Could not access cell0`` text (1)."""
    result: Result[SchemaSyncData, None] = Result()
    revision = version or "head"
    if revision.isdigit():
        return result.crash(
            "Invalid",
            "You requested an sqlalchemy-migrate database version; this is no longer supported")
    rows: list[SyncedDatabase] = []
    for target in targets:
        try:
            engine = dbs.engine_for_sync(target.url, target.label)
            outcome = migrate.sync(engine, kind, revision, nova_deployment=nova_deployment)
        except CellctlError as exc:
            if cell0_text:
                return result.error(_cell0_unreachable(exc), FAILED)
            if crash and target is targets[0]:
                return result.crash(*nova_exception(exc))
            result.error(f"Unable to sync the {target.label}: {exc}", FAILED)
            continue
        # For people only: nova-manage prints nothing here, and kolla counts any
        # stdout of a sync as a change.
        result.note(_describe(target, outcome))
        rows.append({"database": target.label, "url": mask(target.url),
                     **outcome.after.as_dict()})
    result.data = {"databases": rows}
    return result


def _describe(target: Target, outcome: migrate.SyncOutcome) -> str:
    where = f"{target.label} {mask(target.url)}"
    after = outcome.after
    if after.owner == "nova":
        return (f"{where}: schema is managed by Nova (revision {after.revision}); "
                "nothing changed")
    if outcome.changed and outcome.before.revision is None:
        return f"{where}: created at {after.revision}"
    if outcome.changed:
        return f"{where}: upgraded from {outcome.before.revision} to {after.revision}"
    return f"{where}: already at {after.revision}"


def _cell0_unreachable(exc: CellctlError) -> str:
    # nova-manage's text, on stdout, byte for byte (nova/cmd/manage.py DbCommands.sync)
    return ("ERROR: Could not access cell0.\n"
            "Has the nova_api database been created?\n"
            "Has the nova_cell0 database been created?\n"
            "Has \"nova-manage api_db sync\" been run?\n"
            "Has \"nova-manage cell_v2 map_cell0\" been run?\n"
            "Is [api_database]/connection set in nova.conf?\n"
            "Is the cell0 database connection URL correct?\n"
            f"Error: {nova_error_text(exc)}")
