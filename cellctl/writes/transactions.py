"""Transactions that writers share: serialised check-then-write, and duplicate-safe inserts.

``write_transaction`` holds a named advisory lock for the length of one
transaction, so two cellctl processes doing the same check-then-insert take
turns; ``insert_ignoring_duplicates`` lets the database itself skip rows that
another writer (or an earlier, killed run) inserted already.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from cellctl.errors import DatabaseError

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection, Engine

# Seconds a writer waits for another writer's lock (and SQLite's busy timeout).
LOCK_TIMEOUT = 30


@contextlib.contextmanager
def write_transaction(engine: Engine, lock: str | None = None) -> Iterator[Connection]:
    """A transaction for check-then-write work, serialised with other writers.

    ``lock`` names an advisory lock held until the transaction ends, so two
    cellctl processes doing the same check-then-insert never interleave:
    MySQL ``GET_LOCK``, PostgreSQL ``pg_advisory_xact_lock``, and on SQLite the
    database write lock that ``BEGIN IMMEDIATE`` takes. On Galera ``GET_LOCK``
    holds on one node only: writers through other nodes are not kept out, and
    batch code redoes what loses to them (see ``retried``).
    """
    from sqlalchemy import text

    with engine.connect() as conn:
        conn = conn.execution_options(cellctl_write=True)
        name = engine.dialect.name
        got_lock = False
        try:
            with conn.begin():
                # Taken as the transaction's first statement: GET_LOCK reads no table,
                # so the transaction's snapshot still starts with its first read.
                if lock and name in ("mysql", "mariadb"):
                    _get_lock(conn, lock)
                    got_lock = True
                elif lock and name == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": zlib.crc32(f"cellctl.{lock}".encode())},
                    )
                yield conn
        finally:
            if got_lock:
                conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": f"cellctl.{lock}"})
                conn.commit()


def _get_lock(conn: Connection, lock: str) -> None:
    """Take MySQL's named lock ``lock`` for this session, waiting ``LOCK_TIMEOUT`` at most."""
    from sqlalchemy import text

    got = conn.execute(
        text("SELECT GET_LOCK(:name, :timeout)"),
        {"name": f"cellctl.{lock}", "timeout": LOCK_TIMEOUT},
    ).scalar()
    if got != 1:
        raise DatabaseError(f"Timed out waiting for the {lock} lock held by another run")


def insert_ignoring_duplicates(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows``, skipping any that hit a unique key; return how many were inserted.

    This is what makes bulk mapping safe to re-run and to run concurrently: a
    row another run (or an earlier, killed run) already inserted is skipped by
    the database itself, with no check-then-insert window.
    """
    if not rows:
        return 0
    from cellctl.writes import mysql_insert

    if mysql_insert.speaks(conn):
        return mysql_insert.insert_ignore(conn, table, rows)
    name = conn.dialect.name
    if name in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_dialect_insert

        statement: Any = mysql_dialect_insert(table).prefix_with("IGNORE")
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        # psycopg reports no rowcount here; count the rows RETURNING gives back.
        returning = pg_insert(table).on_conflict_do_nothing().returning(
            table.primary_key.columns.values()[0]
        )
        return len(conn.execute(returning, rows).all())
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).on_conflict_do_nothing()
    else:
        raise DatabaseError(f"Unsupported database dialect {name!r}")
    # executemany, not one statement with every row in VALUES: the drivers
    # still send few round trips (PyMySQL folds the rows into multi-row
    # INSERTs, sqlite3 reuses one prepared statement, SQLAlchemy pages
    # PostgreSQL's into multi-row INSERT .. RETURNING), but nothing compiles a
    # statement with tens of thousands of bound parameters, which measured 3x
    # slower and runs into SQLite's limit on parameters per statement.
    return int(conn.execute(statement, rows).rowcount or 0)
