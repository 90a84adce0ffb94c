"""Helpers for the instance mapping tests: a mapped cell, instances with chosen fields,
and the mappings and marker rows left behind."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import sqlalchemy as sa
from hostsupport import DEAD_CELL_URL

from cellctl.tables.cell import instances
from cellctl.tables.rows import INSTANCE_BATCH, _fake_rows, _soft_delete
from cellctl.writes.transactions import insert_ignoring_duplicates

MARKER = "INSTANCE_MIGRATION_MARKER"
BASE_TIME = datetime.datetime(2024, 1, 1, 12, 0, 0)


def mapped_cell(cloud) -> str:
    """Both schemas synced and ``[database]`` mapped as a cell; returns the cell UUID."""
    cloud.synced()
    result = cloud.ok("create_cell", "--name", "cell1", "--transport-url", "memory:///",
                      "--database_connection", cloud.cell_url, "--verbose")
    return result.stdout.strip().splitlines()[-1]


def dead_cell(cloud) -> str:
    """Schemas synced and a cell mapped whose database nobody answers on; its UUID."""
    cloud.synced()
    result = cloud.ok("create_cell", "--transport-url", "memory:///", "--verbose",
                      "--database_connection", DEAD_CELL_URL)
    return result.stdout.strip().splitlines()[-1]


def add_instances(target, count: int, *, deleted: bool = False, **fields: Any) -> list[str]:
    """Insert ``count`` instances into the cell database of ``target`` (a Cloud, or a
    cell database URL); ``created_at`` may be a list of minute offsets from BASE_TIME
    (one per instance) to control Nova's order; ``deleted`` soft-deletes them as Nova
    does (``deleted = id``). Returns UUIDs in insertion (id) order."""
    url = target if isinstance(target, str) else target.cell_url
    offsets = fields.pop("created_at", None)
    rows = []
    for n in range(count):
        row = {"uuid": str(uuid.uuid4()), "project_id": f"project-{n % 3}",
               "user_id": f"user-{n}", "deleted": 0, "hidden": False, "vm_state": "active",
               "created_at": BASE_TIME + datetime.timedelta(minutes=n)}
        if offsets is not None:
            row["created_at"] = BASE_TIME + datetime.timedelta(minutes=offsets[n])
        row.update(fields)
        rows.append(row)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(instances.insert(), rows)
            if deleted:
                conn.execute(instances.update()
                             .where(instances.c.uuid.in_([r["uuid"] for r in rows]))
                             .values(deleted=instances.c.id))
    finally:
        engine.dispose()
    return [r["uuid"] for r in rows]


def nova_order(cloud) -> list[str]:
    """The cell's visible instances in Nova's order (created_at, id)."""
    rows = cloud.rows(cloud.cell_url, "instances", order_by="created_at, id")
    return [r["uuid"] for r in rows if not r["hidden"]]


def instance_mappings(cloud) -> dict[str, dict[str, Any]]:
    """Real instance mappings (not the marker) by instance UUID."""
    return {r["instance_uuid"]: r for r in cloud.api_rows("instance_mappings")
            if r["project_id"] != MARKER}


def markers(cloud) -> list[str]:
    """Marker rows as instance UUIDs (Nova stores them with spaces for dashes)."""
    return [r["instance_uuid"].replace(" ", "-") for r in cloud.api_rows("instance_mappings")
            if r["project_id"] == MARKER]


def put_marker(cloud, instance_uuid: str) -> None:
    """Leave a marker exactly as nova-manage writes one."""
    cloud.execute(
        cloud.api_url,
        "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id, user_id, "
        "queued_for_delete, created_at) VALUES (:u, NULL, :m, :m, :f, :t)",
        {"u": instance_uuid.replace("-", " "), "m": MARKER, "f": False,
         "t": datetime.datetime(2024, 1, 2)},
    )


def seed_fake_instances(url: str, count: int, *, deleted: int = 0) -> None:
    """The rows ``dev add-instances --count COUNT --deleted DELETED`` writes to the cell
    database ``url`` (cellctl's own row builder, 5,000 a transaction, the oldest
    ``deleted`` soft-deleted as Nova does), inserted faster: PyMySQL's executemany
    escapes each value through several Python calls and psycopg's sends each row as
    its own statement (100,000 rows: 5-14 s); here cellctl's multi-row INSERT for
    PyMySQL (cellctl/writes/mysql_insert.py) and PostgreSQL's COPY. The command
    itself is tested in test_dev_instances.py."""
    engine = sa.create_engine(url)
    try:
        first = 0
        while first < count:
            rows = list(_fake_rows(first, None, [None] * min(INSTANCE_BATCH, count - first)))
            with engine.begin() as conn:
                _bulk_insert(conn, rows)
                doomed = [row["uuid"] for n, row in enumerate(rows, first) if n < deleted]
                if doomed:
                    _soft_delete(conn, doomed)
            first += len(rows)
    finally:
        engine.dispose()


def _bulk_insert(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    if conn.dialect.name in ("mysql", "mariadb"):
        assert insert_ignoring_duplicates(conn, instances, rows) == len(rows)
    elif conn.dialect.name == "postgresql":
        columns = list(rows[0])
        quote = conn.dialect.identifier_preparer.quote
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY instances ({', '.join(map(quote, columns))}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
    else:
        conn.execute(instances.insert(), rows)
