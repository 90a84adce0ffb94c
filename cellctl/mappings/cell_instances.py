"""Give every instance of a cell an instance mapping, oldest first: the core of the
``map_instances`` command, which ``simple_cell_setup`` runs too.

The cell's instances (soft-deleted ones too, hidden ones not) are read with
one ordered, streaming query, ``created_at, id`` as Nova orders them, and
mapped in large batches with inserts that skip instances already mapped.
Each batch commits together with the move of Nova's resume marker
(``cellctl.mappings.marker``), so a run killed at any moment resumes exactly where
its last commit left off: nothing is skipped and nothing is mapped twice.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from cellctl.cells.queries import visible_instances
from cellctl.cells.refs import (
    AMBIGUOUS_CELL,
    cell_database,
    cell_has_no_mapping,
    find_cell,
    resolve_cell_uuid,
)
from cellctl.db import Databases, abandon_stream
from cellctl.mappings.instances import (
    MAPPING_ROW_BYTES,
    MappingWriter,
    Prepared,
    mapping_columns,
)
from cellctl.mappings.marker import move_marker, read_marker
from cellctl.prefetch import prefetched
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Result, plural
from cellctl.results import MapInstancesData
from cellctl.tables.cell import instances as i
from cellctl.writes.galera import in_parts, retried, write_limits
from cellctl.writes.locks import MARKER_LOCK
from cellctl.writes.transactions import write_transaction

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Select
    from sqlalchemy.engine import Connection, Engine


class MapInstancesExit(IntEnum):
    """``map_instances``' exit codes (nova-manage's)."""

    DONE = 0  # every instance has been looked at
    MORE = 1  # a max_count run stopped with more to map: run again
    BAD_INPUT = 127  # a bad max_count or cell


# Rows per insert transaction: the larger, the fewer index pages each row
# costs (measured: 20,000 sorted rows beat 10,000 by a third at a million
# instances), while memory (a few batches) and lock times stay small.
WRITE_BATCH = 20_000
MARKER_ROWS = 2  # the old marker deleted, the new one inserted


@dataclass
class _Tally:
    """What one run did, for the result."""

    processed: int = 0
    mapped: int = 0
    without_project: int = 0
    more: bool = False
    marker: str | None = None


def map_cell_instances(dbs: Databases, *, cell_uuid: str, max_count: int | None = None,
                       reset: bool = False, progress: Progress = NO_PROGRESS
                       ) -> Result[MapInstancesData, None]:
    """Map the cell's unmapped instances: all of them, or at most ``max_count`` per run.

    Exit 0 when every instance has been looked at, 1 while more remain after
    a ``max_count`` run (the marker then says where the next run starts), 127
    for a bad ``max_count`` or cell.
    """
    result = Result()
    limit = max_count
    if limit is not None and limit < 1:
        return result.error("Must supply a positive value for max_count",
                            MapInstancesExit.BAD_INPUT)
    with dbs.api.connect() as conn:
        looked_up = Result()
        uuid = resolve_cell_uuid(conn, looked_up, cell_uuid, MapInstancesExit.BAD_INPUT)
        if uuid is None:
            if looked_up.code == AMBIGUOUS_CELL:
                return looked_up
            return cell_has_no_mapping(result, cell_uuid)  # nova-manage crashes: 255
        cell = find_cell(conn, uuid)
        marker = None if reset else read_marker(conn)
    if cell is None:
        return cell_has_no_mapping(result, uuid)

    with dbs.api.connect() as conn:
        writer = MappingWriter(conn, cell.id)
    engine = cell_database(dbs, cell)
    with engine.connect() as conn:
        reader = conn.connection.dbapi_connection
        start = _start_after(conn, marker, result)
        total = _count(conn, start, limit) if progress is not NO_PROGRESS else None
        progress.start("Mapping instances", total)
        try:
            stream = _stream(conn, _instances_query(conn, start, limit))
            try:
                # Reading the next rows and writing out their mappings overlap
                # committing the last batch.
                batches = prefetched(_batches(stream, limit, writer), depth=1)
                done = _map_rows(dbs.api, batches, writer, progress)
            except BaseException:
                # Drop the connection rather than read the rest of a failed
                # run's stream, and keep the driver from complaining about it.
                abandon_stream(reader)
                conn.invalidate()
                raise
            stream.close()
        finally:
            progress.finish()

    if done.without_project:
        have = "has" if done.without_project == 1 else "have"
        result.warn(f"{plural(done.without_project, 'instance')} {have} no project_id and "
                    "cannot be mapped (instance_mappings.project_id is required)")
    result.code = MapInstancesExit.MORE if done.more else MapInstancesExit.DONE
    result.data = {
        "cell_uuid": uuid,
        "processed": done.processed,
        "mapped": done.mapped,
        "already_mapped": done.processed - done.mapped - done.without_project,
        "without_project": done.without_project,
        "more": done.more,
        "marker": done.marker,
    }
    return result


@dataclass(frozen=True)
class _Position:
    created_at: Any
    id: int


def _start_after(conn: Connection, marker: str | None, result: Result) -> _Position | None:
    """Where the marker's instance sits in this cell's order, or None to start at the top."""
    if marker is None:
        return None
    row = conn.execute(select(i.c.created_at, i.c.id).where(i.c.uuid == marker)).first()
    if row is None:
        # The marker is global: a run against another cell may have left it.
        # Starting over is safe, since instances already mapped are skipped.
        result.warn(f"The marker of an unfinished run (instance {marker}) is not in this "
                    "cell; starting from the oldest instance")
        return None
    return _Position(row.created_at, row.id)


def _after(start: _Position) -> ColumnElement[bool]:
    """Keyset condition: instances after ``start`` in (created_at, id) order, NULLs first."""
    if start.created_at is None:
        return or_(i.c.created_at.is_not(None), and_(i.c.created_at.is_(None), i.c.id > start.id))
    return or_(i.c.created_at > start.created_at,
               and_(i.c.created_at == start.created_at, i.c.id > start.id))


def _instances_query(conn: Connection, start: _Position | None, limit: int | None) -> Select:
    """(uuid, project_id, user_id, queued_for_delete) of the instances to map, in order."""
    created_at = i.c.created_at.asc()
    if conn.dialect.name == "postgresql":
        # MySQL and SQLite sort NULLs first; make PostgreSQL agree with them (and Nova).
        created_at = created_at.nulls_first()
    query = (
        select(*mapping_columns())
        .where(visible_instances())
        .order_by(created_at, i.c.id.asc())
    )
    if start is not None:
        query = query.where(_after(start))
    if limit is not None:
        query = query.limit(limit + 1)  # one more, to tell "done" from "more remain"
    return query


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


def _stream(conn: Connection, query: Select) -> Generator[Sequence[Sequence[Any]], None, None]:
    """The query's rows, ``WRITE_BATCH`` at a time, streamed: memory stays flat however
    big the cell is (a server-side cursor where the driver has one).

    On PyMySQL the rows are read as the driver's plain tuples from its
    unbuffered cursor: building SQLAlchemy rows cost about a third of the
    client's reading time (measured: 4.0 against 2.7 µs of CPU per instance).
    """
    if conn.dialect.driver != "pymysql":
        result = conn.execution_options(yield_per=WRITE_BATCH).execute(query)
        try:
            yield from result.partitions(WRITE_BATCH)
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
        while rows := cursor.fetchmany(WRITE_BATCH):
            yield rows
    finally:
        cursor.close()


def _count(conn: Connection, start: _Position | None, limit: int | None) -> int:
    """How many instances this run will look at (only for the progress bar)."""
    query = select(func.count()).select_from(i).where(visible_instances())
    if start is not None:
        query = query.where(_after(start))
    total = int(conn.execute(query).scalar() or 0)
    return total if limit is None else min(total, limit)


@dataclass(frozen=True)
class _Batch:
    """One transaction's worth of instances, their mappings made ready."""

    mappings: list[Prepared]
    marker: str | None  # where the resume marker goes with the batch's commit
    more: bool  # the last batch of a max_count run that stops with instances left
    ordered: list[Any]  # MappingWriter.in_key_order(mappings), sorted while reading


def _batch(writer: MappingWriter, rows: Sequence[Sequence[Any]], marker: str | None,
           more: bool) -> _Batch:
    mappings = writer.prepare(rows)
    return _Batch(mappings, marker, more, writer.in_key_order(mappings))


def _batches(rows_read: Iterator[Sequence[Sequence[Any]]], limit: int | None,
             writer: MappingWriter) -> Iterator[_Batch]:
    """The instances read, ``WRITE_BATCH`` at a time, ending with the batch that
    removes the marker (possibly empty) or, when ``limit`` stops the run before the
    look-ahead row, with the batch (possibly empty) that leaves it for the next run."""
    batch: list[Sequence[Any]] = []
    taken = 0
    for rows in rows_read:
        for row in rows:
            if limit is not None and taken == limit:  # the look-ahead row: stop before it
                yield _batch(writer, batch, batch[-1][0] if batch else None, more=True)
                return
            batch.append(row)
            taken += 1
            if len(batch) == WRITE_BATCH:
                yield _batch(writer, batch, batch[-1][0], more=False)
                batch = []
    yield _batch(writer, batch, None, more=False)


def _map_rows(api: Engine, batches: Generator[_Batch, None, None], writer: MappingWriter,
              progress: Progress) -> _Tally:
    done = _Tally()
    try:
        for batch in batches:
            if batch.more:
                done.more = True
                if not batch.mappings:
                    break  # the last full batch left the marker where the next run starts
            _commit_batch(api, writer, batch, done, progress)
    finally:
        batches.close()  # stops the reading thread before the result is closed
    return done


def _commit_batch(api: Engine, writer: MappingWriter, batch: _Batch, done: _Tally,
                  progress: Progress) -> None:
    """Map ``batch`` and move the marker in one transaction.

    When the batch does not fit one transaction on this server (Galera's
    write-set limits), it is committed in consecutive parts, each moving the
    marker to its own last instance and the last one to the batch's: a run
    killed between parts still resumes exactly. Each part is redone when it
    loses to a concurrent writer (a deadlock, a Galera certification conflict).
    """

    def write(part: Sequence[Prepared], last: bool) -> None:
        part_marker = batch.marker if last else part[-1][0]
        # The whole batch (no Galera limit split it) was sorted on the reading thread.
        ordered = batch.ordered if len(part) == len(batch.mappings) else None
        mapped, without_project = retried(
            lambda: _commit_once(api, writer, part, ordered, part_marker),
            what="Mapping a batch of instances")
        done.processed += len(part)
        done.mapped += mapped
        done.without_project += without_project
        done.marker = part_marker
        progress.advance(len(part))

    if not batch.mappings:
        write(batch.mappings, True)  # only the marker moves (or goes)
        return
    in_parts(batch.mappings, write_limits(api), MAPPING_ROW_BYTES, write,
             extra_rows=MARKER_ROWS)


def _commit_once(api: Engine, writer: MappingWriter, part: Sequence[Prepared],
                 ordered: list[Any] | None, marker: str | None) -> tuple[int, int]:
    """One transaction: the mappings of ``part`` and the marker; (mapped, without project)."""
    with write_transaction(api, lock=MARKER_LOCK) as conn:
        mapped, without_project = writer.insert(conn, part, ordered)
        move_marker(conn, marker)
    return mapped, without_project
