"""Developer helpers: fake instances in a cell database, for demos, tests and benchmarks.

There is no Nova here to boot instances, so ``dev add-instances`` writes rows
that look like Nova's (a UUID, a project and user, a host, soft delete) into
the ``[database]`` cell. It refuses a database whose schema Nova manages: fake
rows must never reach a real cloud.
"""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cellctl import migrate
from cellctl.clock import utcnow
from cellctl.db import Databases
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Result
from cellctl.urls import mask

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

INSERT_BATCH = 5_000
# Fake ownership: instances spread over a realistic number of projects and users.
PROJECTS = 100
USERS_PER_PROJECT = 10


def add_instances(dbs: Databases, count: int, *, host: str | None = None, deleted: int = 0,
                  progress: Progress = NO_PROGRESS) -> Result:
    """Add ``count`` fake instances to ``[database]``; the oldest ``deleted`` are soft-deleted."""
    result = Result()
    if count < 1:
        return result.error("--count must be a positive number of instances", 1)
    if not 0 <= deleted <= count:
        return result.error("--deleted must be between 0 and --count", 1)
    engine = dbs.local_cell
    where = mask(dbs.settings.database_connection.value)
    owner = migrate.schema_state(engine, "cell").owner
    if owner == "nova":
        return result.error(
            f"Refusing to add fake instances to {where}: its schema is managed by Nova, "
            "so it may be a real cloud's database", 1,
        )
    if owner == "none":
        return result.error(f"The cell database {where} has no schema: run 'cellctl db sync'", 1)
    insert_fake_instances(engine, count, host=host, deleted=deleted, progress=progress)
    result.info(f"Added {count} instances ({deleted} deleted) to the cell database {where}")
    result.data = {"added": count, "deleted": deleted, "database": where}
    return result


def insert_fake_instances(engine: Engine, count: int, *, host: str | None = None,
                          deleted: int = 0, progress: Progress = NO_PROGRESS) -> None:
    """Bulk-insert ``count`` fake instance rows, one transaction per batch."""
    progress.start("Adding instances", count)
    try:
        for first in range(0, count, INSERT_BATCH):
            rows = list(_fake_rows(first, min(INSERT_BATCH, count - first), host))
            with engine.begin() as conn:
                _insert(conn, rows)
                doomed = [row["uuid"] for n, row in enumerate(rows, first) if n < deleted]
                if doomed:
                    _soft_delete(conn, doomed)
            progress.advance(len(rows))
    finally:
        progress.finish()


def _fake_rows(first: int, count: int, host: str | None) -> Iterator[dict[str, Any]]:
    now = utcnow()
    for n in range(first, first + count):
        project = n % PROJECTS
        user = (n // PROJECTS) % USERS_PER_PROJECT
        yield {
            "uuid": str(uuidlib.uuid4()),
            "project_id": _fake_id(f"project-{project}"),
            "user_id": _fake_id(f"user-{project}-{user}"),
            "created_at": now,
            "deleted": 0,
            "hidden": False,
            "vm_state": "active",
            "power_state": 1,
            "host": host,
            "node": host,
            "launched_on": host,
            "display_name": f"fake-{n}",
            "hostname": f"fake-{n}",
            "memory_mb": 512,
            "vcpus": 1,
            "root_gb": 1,
            "ephemeral_gb": 0,
            "launch_index": 0,
            "cleaned": 0,
        }


def _fake_id(seed: str) -> str:
    """A stable 32-hex-digit id, shaped like Keystone's project and user ids."""
    return hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()


def _insert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    from cellctl.tables.cell import instances

    conn.execute(instances.insert(), rows)  # executemany: the driver batches the rows


def _soft_delete(conn: Connection, uuids: list[str]) -> None:
    """Delete as Nova does: ``deleted = id``, ``deleted_at`` set, the VM gone."""
    from cellctl.tables.cell import instances

    now = utcnow()
    conn.execute(
        instances.update()
        .where(instances.c.uuid.in_(uuids))
        .values(deleted=instances.c.id, deleted_at=now, terminated_at=now,
                vm_state="deleted", power_state=0)
    )
