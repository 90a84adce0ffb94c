"""Create and upgrade the API and cell schemas with Alembic; recognise Nova's.

cellctl keeps its own Alembic version tables (``cellctl_api_version``,
``cellctl_cell_version``) so it never touches Nova's ``alembic_version``. A
database that Nova created and migrated is recognised and left alone: Nova
owns its schema, cellctl only reads and writes rows in it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cellctl.errors import CellctlError, UnknownRevision

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from cellctl import results

Kind = Literal["api", "cell"]

VERSION_TABLES: dict[str, str] = {"api": "cellctl_api_version", "cell": "cellctl_cell_version"}
# The newest revision of each tree; a test checks these against Alembic, so
# start-up can tell "at head" from one small query without importing Alembic.
HEADS: dict[str, str] = {"api": "api_0001", "cell": "cell_0001"}
# A table only that schema has: if it is there without our version table, Nova made it.
_KEY_TABLES = {"api": "cell_mappings", "cell": "instances"}
_NOVA_VERSION_TABLES = ("alembic_version", "migrate_version")
# Newest schema revisions of nova 34.0.0, to tell a current Nova database from an old one.
NOVA_HEADS = {"api": "cdeec0c85668", "cell": "ab450ba04102"}

Owner = Literal["cellctl", "nova", "none"]


@dataclass(frozen=True)
class SchemaState:
    kind: str
    owner: Owner
    revision: str | None
    head: str

    @property
    def is_current(self) -> bool:
        if self.owner == "nova":
            return self.revision == NOVA_HEADS[self.kind]
        return self.owner == "cellctl" and self.revision == self.head

    def as_dict(self) -> results.SchemaStateData:
        return {
            "schema": self.kind,
            "managed_by": None if self.owner == "none" else self.owner,
            "revision": self.revision,
            "head": NOVA_HEADS[self.kind] if self.owner == "nova" else self.head,
            "current": self.is_current,
        }


def script_location(kind: str) -> Path:
    package = importlib.import_module(f"cellctl.migrations.{kind}")
    return Path(package.__file__ or "").parent


def inspect_schema(conn: Connection, kind: Kind) -> SchemaState:
    from sqlalchemy import inspect, text

    tables = set(inspect(conn).get_table_names())
    version_table = VERSION_TABLES[kind]
    if version_table in tables:
        revision = conn.execute(text(f"SELECT version_num FROM {version_table}")).scalar()
        return SchemaState(kind, "cellctl", revision, HEADS[kind])
    if _KEY_TABLES[kind] in tables or any(t in tables for t in _NOVA_VERSION_TABLES):
        revision = None
        if "alembic_version" in tables:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return SchemaState(kind, "nova", revision, HEADS[kind])
    return SchemaState(kind, "none", None, HEADS[kind])


def schema_state(engine: Engine, kind: Kind) -> SchemaState:
    with engine.connect() as conn:
        return inspect_schema(conn, kind)


@dataclass(frozen=True)
class SyncOutcome:
    before: SchemaState
    after: SchemaState

    @property
    def changed(self) -> bool:
        return self.before.revision != self.after.revision


def sync(engine: Engine, kind: Kind, revision: str = "head", *,
         nova_deployment: bool = False) -> SyncOutcome:
    """Upgrade ``engine``'s database to ``revision``; a Nova database is left unchanged.

    ``nova_deployment`` says this deployment's schemas are Nova's (its
    ``[database]`` is): an empty database is then refused instead of given
    cellctl's schema, which Nova's own ``db sync`` could never upgrade.
    """
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    from cellctl.writes.locks import schema_lock
    from cellctl.writes.transactions import write_transaction

    # The lock makes two concurrent syncs run one after the other instead of
    # both creating the same tables.
    with write_transaction(engine, lock=schema_lock(kind)) as conn:
        before = inspect_schema(conn, kind)
        if before.owner == "nova":
            return SyncOutcome(before, before)
        if nova_deployment and before.owner == "none":
            command_name = "api_db sync" if kind == "api" else "db sync"
            raise CellctlError(
                f"it has no schema yet and this deployment's schemas are Nova's: create it "
                f"with 'nova-manage {command_name}' (cellctl would create its own, which "
                "Nova cannot upgrade)"
            )
        config = Config()
        config.set_main_option("script_location", str(script_location(kind)))
        config.attributes["connection"] = conn
        try:
            # Known before anything is written: alembic creates its version table first,
            # and MySQL commits DDL at once (an empty one would pass for a schema).
            ScriptDirectory.from_config(config).get_revisions(revision)
            command.upgrade(config, revision)
        except CommandError as exc:
            raise UnknownRevision(f"Cannot upgrade the {kind} schema to {revision}: {exc}",
                                  alembic_text=str(exc)) from None
        after = inspect_schema(conn, kind)
    return SyncOutcome(before, after)


def is_nova_deployment(engine: Engine) -> bool:
    """Whether this cell database (``[database]``) has Nova's schema; False if unreadable."""
    try:
        return schema_state(engine, "cell").owner == "nova"
    except CellctlError:
        return False


def ensure_current(engine: Engine, kind: Kind) -> None:
    """Bring one of cellctl's own embedded databases to head (cheap when it already is)."""
    if not schema_state(engine, kind).is_current:
        sync(engine, kind)


def run_environment(context: Any, kind: Kind) -> None:
    """The body of both trees' env.py: run migrations on the connection we pass in."""
    from cellctl.tables import api, cell

    metadata = {"api": api.metadata, "cell": cell.metadata}[kind]
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise CellctlError("cellctl migrations run through 'cellctl api_db sync' / 'db sync'")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLES[kind],
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
