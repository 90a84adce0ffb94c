"""A cell's instances in Nova's map_instances order, streamed: ``created_at, id``, NULLs first.

One ordered query reads them everywhere. On MySQL and MariaDB that query is
a sort of the whole table, and its first row comes only when the sort is done
(measured: 2.2 s at a million instances, all of it before the first insert).
There, when the cell has more live instances than the head (``head``), the
head ends at the ``head``-th live instance, found in Nova's ``(deleted,
created_at)`` index alone; the head (the instances up to that place) is read
first, its live instances through that index, which gives them in this order
at once, while the rest (a keyset after that place) is sorted by the server on
a second connection: the first batches are mapped while the server sorts the
rest.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, union_all

from cellctl.cells.queries import visible_instances
from cellctl.db import abandon_connection, wake_reader
from cellctl.mappings.instances import mapping_columns
from cellctl.prefetch import ReadAhead
from cellctl.tables.cell import instances as i

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Select
    from sqlalchemy.engine import Connection, Engine

Rows = Sequence[Sequence[Any]]  # (uuid, project_id, user_id, queued_for_delete) rows

# Seconds the server waits on the rest's connection while the head is mapped
# (its default, 60 s, is shorter than mapping a head on a slow API database).
_REST_WRITE_TIMEOUT = 3600


@dataclass(frozen=True)
class Position:
    """An instance's place in the order."""

    created_at: Any
    id: int


def position_of(conn: Connection, instance_uuid: str) -> Position | None:
    """Where the cell's instance ``instance_uuid`` sits in the order, or None."""
    row = conn.execute(select(i.c.created_at, i.c.id).where(i.c.uuid == instance_uuid)).first()
    return None if row is None else Position(row.created_at, row.id)


def _after(start: Position) -> ColumnElement[bool]:
    """Keyset condition: instances after ``start`` in (created_at, id) order, NULLs first."""
    if start.created_at is None:
        return or_(i.c.created_at.is_not(None), and_(i.c.created_at.is_(None), i.c.id > start.id))
    return or_(i.c.created_at > start.created_at,
               and_(i.c.created_at == start.created_at, i.c.id > start.id))


def _up_to(end: Position) -> ColumnElement[bool]:
    """Keyset condition: instances at or before ``end`` (``_after``'s complement)."""
    if end.created_at is None:
        return and_(i.c.created_at.is_(None), i.c.id <= end.id)
    return or_(i.c.created_at.is_(None), i.c.created_at < end.created_at,
               and_(i.c.created_at == end.created_at, i.c.id <= end.id))


def _after_start(query: Select, start: Position | None) -> Select:
    """``query`` kept to the instances after ``start`` (all of them when None)."""
    return query if start is None else query.where(_after(start))


def _to_map(columns: Sequence[ColumnElement[Any]], start: Position | None) -> Select:
    """``columns`` of the instances to map after ``start``, unordered."""
    return _after_start(select(*columns).where(visible_instances()), start)


def _in_order(conn: Connection, query: Select, created_at: Any, id_: Any) -> Select:
    created = created_at.asc()
    if conn.dialect.name == "postgresql":
        # MySQL and SQLite sort NULLs first; make PostgreSQL agree with them (and Nova).
        created = created.nulls_first()
    return query.order_by(created, id_.asc())


def instances_query(conn: Connection, start: Position | None, limit: int | None) -> Select:
    """(uuid, project_id, user_id, queued_for_delete) of the instances to map after
    ``start``, in order, ``limit`` + 1 of them at most (the look-ahead row)."""
    query = _in_order(conn, _to_map(mapping_columns(), start), i.c.created_at, i.c.id)
    return query if limit is None else query.limit(limit + 1)


def count_instances(conn: Connection, start: Position | None, limit: int | None) -> int:
    """How many instances a run will look at (only for the progress bar)."""
    total = int(conn.execute(_to_map([func.count()], start)).scalar() or 0)
    return total if limit is None else min(total, limit)


def _head(conn: Connection, start: Position | None, end: Position, live: int) -> Select:
    """The instances to map after ``start`` up to ``end`` (the ``live``-th live one), in
    order: the live ones, which the ``(deleted, created_at)`` index gives in order at
    once, merged, when there are any, with the deleted ones (few, or sorted) by
    sorting the union (the first rows then come when it is sorted)."""
    columns = [*mapping_columns(), i.c.created_at, i.c.id]
    deleted = or_(i.c.deleted != 0, i.c.deleted.is_(None))
    parts = [
        _in_order(conn, _to_map(columns, start).where(kind, _up_to(end)),
                  i.c.created_at, i.c.id).limit(rows)
        for kind, rows in ((i.c.deleted == 0, live), (deleted, None))
    ]
    mapped = len(columns) - 2  # the mapping's columns, then their place
    if not _any_deleted(conn, start, end, deleted):
        return parts[0].with_only_columns(*columns[:mapped])
    head = union_all(*parts).subquery("head")
    return _in_order(conn, select(*list(head.c)[:mapped]), head.c.created_at, head.c.id)


def _any_deleted(conn: Connection, start: Position | None, end: Position,
                 deleted: ColumnElement[bool]) -> bool:
    """Are there deleted instances after ``start`` up to ``end``, hidden ones counted?
    Read from the ``(deleted, created_at)`` index alone."""
    query = _after_start(select(i.c.id).where(deleted, _up_to(end)), start).limit(1)
    return conn.execute(query).first() is not None


def _head_end(conn: Connection, start: Position | None, live: int) -> Position | None:
    """The place of the ``live``-th live instance after ``start``, hidden ones counted
    (None when there are fewer): read from the ``(deleted, created_at)`` index alone,
    which holds each instance's id too."""
    query = _after_start(select(i.c.created_at, i.c.id).where(i.c.deleted == 0), start)
    found = conn.execute(_in_order(conn, query, i.c.created_at, i.c.id)
                         .offset(live - 1).limit(1)).first()
    return None if found is None else Position(found.created_at, found.id)


# MariaDB sorts rows whose columns could be wider than max_length_for_sort_data
# (1 KiB by default; these can reach 2.4 KiB) as (key, row id) pairs, then reads
# each row again by its id while the result streams out: for the length of the
# run the cell's table is read again, in sort order, through the buffer pool,
# evicting the pages the API database's inserts need (measured at 10^6
# instances: 3 million page accesses against 15,000, the inserts a quarter
# slower). With the limit raised for this statement only, the sort carries the
# (packed) columns and streaming the result reads no table. (MySQL 8 packs
# them by itself and has no SET STATEMENT.)
_SORT_CARRYING_ROWS = "SET STATEMENT max_length_for_sort_data=65536 FOR "


def stream(conn: Connection, query: Select, batch: int) -> Generator[Rows, None, None]:
    """The query's rows, ``batch`` at a time, streamed: memory stays flat however
    big the cell is (a server-side cursor where the driver has one).

    On PyMySQL the rows are read as the driver's plain tuples from its
    unbuffered cursor: building SQLAlchemy rows cost about a third of the
    client's reading time (measured: 4.0 against 2.7 µs of CPU per instance).
    """
    if conn.dialect.driver != "pymysql":
        result = conn.execution_options(yield_per=batch).execute(query)
        try:
            yield from result.partitions(batch)
        finally:
            result.close()
        return
    from pymysql.cursors import SSCursor  # type: ignore[import-untyped]

    compiled = query.compile(dialect=conn.dialect)  # pyformat, as PyMySQL takes it
    sql = str(compiled)
    if getattr(conn.dialect, "is_mariadb", False):  # a MySQL dialect on MariaDB says so
        sql = _SORT_CARRYING_ROWS + sql
    cursor = conn.connection.dbapi_connection.cursor(SSCursor)  # type: ignore[union-attr]
    try:
        cursor.execute(sql, compiled.construct_params())
        while rows := cursor.fetchmany(batch):
            yield rows
    finally:
        cursor.close()


@contextlib.contextmanager
def ordered_instances(engine: Engine, start: Position | None, limit: int | None, *,
                      batch: int, head: int) -> Iterator[Iterator[Rows]]:
    """The instances to map after ``start`` (``limit`` + 1 at most, the look-ahead row),
    in order, ``batch`` rows at a time: one stream, or on PyMySQL the head read
    through the index while the server sorts the rest (the module's docstring).

    Leaving the block early (an exception, an interrupt) drops the cell's
    connections instead of reading their streams to the end.
    """
    with engine.connect() as conn:
        try:
            end = None
            if conn.dialect.driver == "pymysql" and (limit is None or limit + 1 > head):
                end = _head_end(conn, start, head)
            if end is None:
                rows = stream(conn, instances_query(conn, start, limit), batch)
                yield rows
                rows.close()
                return
            # How many the head holds is not known (its hidden instances are left out,
            # its deleted ones counted in): the rest is asked for up to ``limit`` + 1.
            with _rest_read(engine, end, limit, batch) as rest:
                rows = stream(conn, _head(conn, start, end, head), batch)
                yield itertools.chain(rows, rest)
                rows.close()
        except BaseException:
            abandon_connection(conn)
            raise


@contextlib.contextmanager
def _rest_read(engine: Engine, after: Position, limit: int | None, batch: int
               ) -> Iterator[Iterator[Rows]]:
    """The instances after the head, on a connection of their own: the query is sent,
    and its first batch read, by a thread from now on (the server sorts meanwhile);
    the batches after it are read by whoever reads the first, once the head is read."""
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SET SESSION net_write_timeout = {_REST_WRITE_TIMEOUT}")
        rows = stream(conn, instances_query(conn, after, limit), batch)
        # The thread is done with the stream once its one batch is taken.
        first = ReadAhead(itertools.islice(rows, 1), depth=1)
        try:
            yield itertools.chain(first, rows)
            rows.close()
        except BaseException:
            # A thread still waiting for the server's sort gives up now, not when the
            # sort ends (seconds, at millions of instances): an interrupt is prompt.
            wake_reader(conn.connection.dbapi_connection)
            raise
        finally:
            first.close()
            # Not back into the pool: a read left unfinished, or the session's timeout.
            abandon_connection(conn)
