"""Give every instance of a cell an instance mapping, oldest first: the core of the
``map_instances`` command, which ``simple_cell_setup`` runs too.

The cell's instances (soft-deleted ones too, hidden ones not) are streamed
in Nova's order, ``created_at, id`` (``cellctl.mappings.cell_order``), and
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

from cellctl.cells.refs import (
    AMBIGUOUS_CELL,
    cell_database,
    cell_has_no_mapping,
    find_cell,
    resolve_cell_uuid,
)
from cellctl.db import Databases
from cellctl.mappings.cell_order import (
    Position,
    Rows,
    count_instances,
    ordered_instances,
    position_of,
)
from cellctl.mappings.instances import MAPPING_ROW_BYTES, MappingWriter, Prepared, Ready
from cellctl.mappings.marker import move_marker, read_marker
from cellctl.prefetch import prefetched, quick_handoffs
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Result, plural
from cellctl.results import MapInstancesData
from cellctl.writes.galera import in_parts, retried, write_limits
from cellctl.writes.locks import MARKER_LOCK
from cellctl.writes.transactions import write_transaction

if TYPE_CHECKING:
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
# Batches read through the index before the rest of a big cell (cellctl.mappings.cell_order):
# more than are mapped in the time a MariaDB server takes to sort a million instances
# (measured: 5 batches were mapped, and the 6th waited 0.23 s for the sort).
HEAD_BATCHES = 8
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
        start = _start_after(conn, marker, result)
        total = count_instances(conn, start, limit) if progress is not NO_PROGRESS else None
    progress.start("Mapping instances", total)
    try:
        with quick_handoffs(), ordered_instances(engine, start, limit, batch=WRITE_BATCH,
                                                 head=HEAD_BATCHES * WRITE_BATCH) as rows:
            # Reading the next rows and writing out their mappings overlap
            # committing the last batch.
            done = _map_rows(dbs.api, prefetched(_batches(rows, limit, writer), depth=1),
                             writer, progress)
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


def _start_after(conn: Connection, marker: str | None, result: Result) -> Position | None:
    """Where the marker's instance sits in this cell's order, or None to start at the top."""
    if marker is None:
        return None
    start = position_of(conn, marker)
    if start is None:
        # The marker is global: a run against another cell may have left it.
        # Starting over is safe, since instances already mapped are skipped.
        result.warn(f"The marker of an unfinished run (instance {marker}) is not in this "
                    "cell; starting from the oldest instance")
    return start


@dataclass(frozen=True)
class _Batch:
    """One transaction's worth of instances, their mappings made ready."""

    mappings: list[Prepared]
    marker: str | None  # where the resume marker goes with the batch's commit
    more: bool  # the last batch of a max_count run that stops with instances left
    ready: Ready  # MappingWriter.ready(mappings), made while reading


def _batch(writer: MappingWriter, rows: Sequence[Sequence[Any]], marker: str | None,
           more: bool) -> _Batch:
    mappings = writer.prepare(rows)
    return _Batch(mappings, marker, more, writer.ready(mappings))


def _batches(rows_read: Iterator[Rows], limit: int | None,
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
        # The whole batch (no Galera limit split it) was made ready on the reading thread.
        ready = batch.ready if len(part) == len(batch.mappings) else None
        mapped, without_project = retried(
            lambda: _commit_once(api, writer, part, ready, part_marker),
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
                 ready: Ready | None, marker: str | None) -> tuple[int, int]:
    """One transaction: the mappings of ``part`` and the marker; (mapped, without project)."""
    with write_transaction(api, lock=MARKER_LOCK) as conn:
        mapped, without_project = writer.insert(conn, part, ready)
        move_marker(conn, marker)
    return mapped, without_project
