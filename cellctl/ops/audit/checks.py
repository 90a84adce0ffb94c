"""The findings, the run, and the instance checks of ``audit`` (and their repairs).

The API database and the cells are different databases, so nothing joins
across them. The instances are checked in one merge walk
(``cellctl.mappings.lookup.walk``): every cell's instance UUIDs and the API's
instance mappings, each streamed in UUID order from its own index and
merged once; only what the walk finds odd is looked up again, in pages, with
one ``IN`` query per database. The hosts are merged the same way in
``cellctl.ops.audit.hosts``. Memory is a few batches per stream, whatever the
size of the cloud.

A repair is collected as the walk finds it and made a page at a time, in a
transaction that holds the lock the concurrent writer of the same rows
takes (``map_instances``' MARKER_LOCK for instance mappings,
``discover_hosts``' HOST_MAPPING_LOCK for host mappings) and re-reads the
condition first: what a concurrent run or Nova changed in between is left as
it is, never undone and never duplicated.
"""

from __future__ import annotations

import contextlib
import datetime
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import delete, select, update

from cellctl.cells.queries import (
    visible_instances,
)
from cellctl.cells.reach import CellUnreachable, Unreachable
from cellctl.cells.refs import CellRef
from cellctl.clock import utcnow
from cellctl.errors import CellctlError
from cellctl.mappings.instances import MAPPING_ROW_BYTES, insert_mappings, mapping_columns
from cellctl.mappings.lookup import PAGE, Sighting, fold, sorted_keys, walk
from cellctl.mappings.marker import MARKER_PROJECT_ID
from cellctl.paging import chunks, keyset_pages
from cellctl.tables.api import instance_mappings as im
from cellctl.tables.cell import instances as i
from cellctl.writes.galera import in_parts, retried, write_limits
from cellctl.writes.locks import MARKER_LOCK
from cellctl.writes.transactions import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine, Row

    from cellctl.results import AuditFinding

T = TypeVar("T")

INSTANCE_WITHOUT_MAPPING = "instance_without_mapping"
MAPPING_WITHOUT_INSTANCE = "mapping_without_instance"
MAPPING_IN_WRONG_CELL = "mapping_in_wrong_cell"
MAPPING_WITHOUT_CELL = "mapping_without_cell"
HOST_MAPPING_WITHOUT_HOST = "host_mapping_without_host"
NODE_MAPPED_WITHOUT_HOST_MAPPING = "node_mapped_without_host_mapping"
HOST_IN_SEVERAL_CELLS = "host_in_several_cells"
LEFTOVER_MARKER = "leftover_marker"

KINDS = (
    INSTANCE_WITHOUT_MAPPING, MAPPING_WITHOUT_INSTANCE, MAPPING_IN_WRONG_CELL,
    MAPPING_WITHOUT_CELL, HOST_MAPPING_WITHOUT_HOST, NODE_MAPPED_WITHOUT_HOST_MAPPING,
    HOST_IN_SEVERAL_CELLS, LEFTOVER_MARKER,
)
FIXABLE_KINDS = (
    INSTANCE_WITHOUT_MAPPING, MAPPING_WITHOUT_INSTANCE, MAPPING_IN_WRONG_CELL,
    HOST_MAPPING_WITHOUT_HOST, NODE_MAPPED_WITHOUT_HOST_MAPPING,
)
# Kinds that have no cell.
CELL_LESS_KINDS = (MAPPING_WITHOUT_CELL, LEFTOVER_MARKER)

@dataclass
class Findings:
    """Every finding counted, the first ``limit`` of each kind kept; thread-safe."""

    kinds: Sequence[str]
    limit: int
    fix: bool
    listed: dict[str, list[AuditFinding]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    fixed: dict[str, int] = field(default_factory=dict)
    # Findings a re-check under the lock found gone (a concurrent writer repaired them).
    vanished: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for kind in self.kinds:
            self.listed[kind] = []
            self.counts[kind] = 0
            self.vanished[kind] = 0
            if kind in FIXABLE_KINDS:
                self.fixed[kind] = 0

    def wants(self, *kinds: str) -> bool:
        return any(kind in self.counts for kind in kinds)

    def add(self, kind: str, cell: CellRef | None, subject: str, detail: str,
            fixable: bool) -> None:
        if kind not in self.counts:
            return
        with self._lock:
            self.counts[kind] += 1
            if len(self.listed[kind]) < self.limit:
                self.listed[kind].append({
                    "kind": kind, "cell_uuid": cell.uuid if cell else None,
                    "cell_name": cell.name if cell else None, "subject": subject,
                    "detail": detail, "fixable": fixable})

    def repaired(self, kind: str, fixed: int, vanished: int = 0) -> None:
        with self._lock:
            self.fixed[kind] += fixed
            self.vanished[kind] += vanished

    def remaining(self) -> int:
        """Findings that are still there: not repaired by this run nor by another."""
        return sum(self.counts[k] - self.fixed.get(k, 0) - self.vanished[k]
                   for k in self.counts)


@dataclass
class Audit:
    """One audit run: the cells, their engines, the threads and what was found."""

    api: Engine
    cells: list[CellRef]  # every cell (cross-cell checks look in all of them)
    engines: dict[int, Engine]  # cell id -> engine, for the cells that answered the probe
    only: CellRef | None  # --cell_uuid: findings of this cell only
    found: Findings
    pool: Executor  # one thread per cell, for parallel look-ups
    now: datetime.datetime
    build_timeout: float
    cell_by_id: dict[int, CellRef] = field(init=False)
    # The cells that could not be read (reach.py's one record; each named in the result).
    unreachable: Unreachable = field(default_factory=Unreachable)

    def __post_init__(self) -> None:
        self.cell_by_id = {cell.id: cell for cell in self.cells}

    @property
    def fix(self) -> bool:
        return self.found.fix

    def mine(self, cell: CellRef) -> bool:
        """Whether ``cell``'s findings are reported (all, or the --cell_uuid one)."""
        return self.only is None or cell.id == self.only.id

    def readable(self) -> list[CellRef]:
        return [c for c in self.cells if c.id in self.engines and c not in self.unreachable]

    def complete(self) -> bool:
        """Whether every cell could be read so far (absence anywhere can be concluded)."""
        return not self.unreachable

    def in_cell(self, cell: CellRef, work: Callable[[Engine], T]) -> T:
        """Run ``work`` on ``cell``'s database; its failure is the cell's (recorded, and
        raised as CellUnreachable)."""
        with self.unreachable.access(cell):
            return work(self.engines[cell.id])

    def per_cell(self, jobs: dict[int, Callable[[Engine], T]]) -> dict[int, T]:
        """Each cell's own job (cell id -> job), all at once; a cell that fails is
        recorded as unreachable and left out of the answer."""
        targets = [self.cell_by_id[cell_id] for cell_id in jobs]
        targets = [c for c in targets if c.id in self.engines and c not in self.unreachable]
        futures = {c.id: self.pool.submit(self.in_cell, c, jobs[c.id]) for c in targets}
        answers: dict[int, T] = {}
        for cell in targets:
            with contextlib.suppress(CellUnreachable):  # recorded in audit.unreachable
                answers[cell.id] = futures[cell.id].result()
        return answers

    def everywhere(self, work: Callable[[Engine], T],
                   cells: Sequence[CellRef] | None = None) -> dict[int, T]:
        """``work`` on every readable cell (or ``cells``) at once; cell id -> its answer.

        A cell that fails is recorded as unreachable and left out of the answer.
        """
        targets = cells if cells is not None else self.cells
        return self.per_cell({cell.id: work for cell in targets})


# --- instances against instance_mappings: one merge walk ----------------------------


INSTANCE_KINDS = (INSTANCE_WITHOUT_MAPPING, MAPPING_WITHOUT_INSTANCE, MAPPING_IN_WRONG_CELL)


def check_instances(audit: Audit) -> None:
    """instance_without_mapping, mapping_in_wrong_cell and mapping_without_instance, in one
    walk over every readable cell's instances and the API's instance mappings.

    What the walk yields is only what is odd: an instance no mapping names
    (looked up in its cell: a hidden one is a move's shadow, not a finding),
    a mapping to a cell that lacks its instance (looked up in every cell
    that has a row for it; none at all: an orphan, if every cell was read),
    an instance in several cells. Each is collected into a page, the page
    decided and its repairs made with a few queries.
    """
    found = audit.found
    if not found.wants(*INSTANCE_KINDS):
        return
    streams = {}
    for cell in audit.readable():
        # (a failure is recorded in audit.unreachable by access)
        with contextlib.suppress(CellUnreachable), audit.unreachable.access(cell):
            streams[cell.id] = sorted_keys(audit.engines[cell.id], i.c.uuid)
    mappings = sorted_keys(audit.api, im.c.instance_uuid, im.c.id, im.c.cell_id)

    def unreachable(cell_id: int, exc: CellctlError) -> None:
        audit.unreachable.mark(audit.cell_by_id[cell_id], str(exc))

    pages = _Pages(audit)
    for seen in walk(mappings, streams, unreachable):
        pages.add(seen)
    pages.flush(everything=True)


@dataclass
class _Pages:
    """What the walk found odd, a page at a time: decided, reported and repaired per page."""

    audit: Audit
    unmapped: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    placed: list[tuple[Any, list[tuple[int, str]]]] = field(default_factory=list)
    to_map: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    orphans: list[Any] = field(default_factory=list)
    moves: list[tuple[Any, int]] = field(default_factory=list)

    def add(self, seen: Sighting) -> None:
        audit, mapping = self.audit, seen.mapping
        if mapping is None:
            if audit.found.wants(INSTANCE_WITHOUT_MAPPING):
                for cell_id, uuid in seen.cells:
                    if audit.mine(audit.cell_by_id[cell_id]):
                        self.unmapped[cell_id].append(uuid)
                        if len(self.unmapped[cell_id]) >= PAGE:
                            self._unmapped(cell_id)
                            self.flush()  # a long run of unmapped instances: map a page
            return
        if mapping.cell_id is None:
            return  # a build not yet scheduled: check_mappings' concern
        if not (audit.found.wants(MAPPING_IN_WRONG_CELL) or (
                audit.found.wants(MAPPING_WITHOUT_INSTANCE)
                and audit.mine(audit.cell_by_id[mapping.cell_id]))):
            return
        if seen.cells:
            self.placed.append((mapping, seen.cells))
            if len(self.placed) >= PAGE:
                self._placed()
        else:  # the walk read every readable cell: none has a row for it
            _judge(audit, mapping, _NOWHERE, self.orphans, self.moves)
        self.flush()

    def _unmapped(self, cell_id: int) -> None:
        uuids, self.unmapped[cell_id] = self.unmapped[cell_id], []
        cell = self.audit.cell_by_id[cell_id]
        with contextlib.suppress(CellUnreachable):  # recorded in audit.unreachable
            self.to_map[cell_id] += _unmapped_instances(self.audit, cell, uuids)

    def _placed(self) -> None:
        placed, self.placed = self.placed, []
        if not placed:
            return
        seen = _where_instances_are(self.audit, [m.instance_uuid for m, _ in placed])
        for mapping, _ in placed:
            _judge(self.audit, mapping, seen.get(fold(mapping.instance_uuid), _NOWHERE),
                   self.orphans, self.moves)

    def flush(self, *, everything: bool = False) -> None:
        """Decide what is pending (``everything``), and repair what is due."""
        audit = self.audit
        if everything:
            for cell_id in list(self.unmapped):
                self._unmapped(cell_id)
            self._placed()
        if not audit.fix:
            self.orphans, self.moves = [], []
            self.to_map.clear()
            return
        for cell_id, uuids in list(self.to_map.items()):
            if uuids and (everything or len(uuids) >= PAGE):
                self.to_map[cell_id] = []
                cell = audit.cell_by_id[cell_id]
                with contextlib.suppress(CellUnreachable):  # recorded in audit.unreachable
                    _map_instances(audit, cell, uuids)
        due = len(self.orphans) + len(self.moves)
        if due and (everything or due >= PAGE):
            _repair_mappings(audit, self.orphans, self.moves)
            self.orphans, self.moves = [], []


def _unmapped_instances(audit: Audit, cell: CellRef, uuids: list[str]) -> list[str]:
    """Report the visible ones of ``uuids`` (unmapped instances); those --fix may map."""
    def details(db: Engine) -> list[Row[Any]]:
        with db.connect() as conn:
            return list(conn.execute(select(*mapping_columns())
                                     .where(i.c.uuid.in_(uuids), visible_instances())))

    unmapped = audit.in_cell(cell, details)
    for row in unmapped:
        state = "deleted " if row.queued_for_delete else ""
        if row.project_id is None:
            audit.found.add(INSTANCE_WITHOUT_MAPPING, cell, row.uuid,
                            f"{state}instance has no instance mapping and no project_id "
                            "(instance_mappings.project_id is required)", False)
        else:
            audit.found.add(INSTANCE_WITHOUT_MAPPING, cell, row.uuid,
                            f"{state}instance has no instance mapping "
                            "(map_instances maps it)", True)
    return [row.uuid for row in unmapped if row.project_id is not None]


def _map_instances(audit: Audit, cell: CellRef, uuids: list[str]) -> None:
    """Map these instances as map_instances does, after reading them again under its lock:
    in parts that fit the server's transactions, each redone if it loses to a
    concurrent writer (a deadlock, a Galera certification conflict)."""
    def still_there(part: Sequence[str]) -> Callable[[Engine], list[Row[Any]]]:
        def read(db: Engine) -> list[Row[Any]]:
            with db.connect() as conn:
                return list(conn.execute(select(*mapping_columns())
                                         .where(i.c.uuid.in_(list(part)), visible_instances())))
        return read

    def once(part: Sequence[str]) -> int:
        with write_transaction(audit.api, lock=MARKER_LOCK) as conn:
            rows = audit.in_cell(cell, still_there(part))
            return insert_mappings(conn, rows, cell.id)[0]

    mapped = sum(in_parts(uuids, write_limits(audit.api), MAPPING_ROW_BYTES,
                          lambda part, _last: retried(lambda: once(part),
                                                      what="Mapping instances the audit found")))
    # Archived since, or mapped since by a concurrent map_instances: not ours to count.
    audit.found.repaired(INSTANCE_WITHOUT_MAPPING, mapped, len(uuids) - mapped)


# --- instance_mappings against every cell ------------------------------------------


@dataclass(frozen=True)
class _Seen:
    """Where an instance was found: cells with any row, cells where it lives."""

    anywhere: frozenset[int]
    living: frozenset[int]


def _where_instances_are(audit: Audit, uuids: Sequence[str]) -> dict[str, _Seen]:
    """folded UUID -> the cells that have it, with one IN query per cell, all in parallel.

    "Living" is not deleted and not hidden (a hidden row is the other half of
    a cross-cell move, not the instance).
    """
    keys = sorted({form for uuid in uuids for form in (uuid, uuid.lower(), uuid.upper())})
    query = select(i.c.uuid, i.c.deleted, i.c.hidden).where(i.c.uuid.in_(keys))

    def look(db: Engine) -> list[tuple[str, bool]]:
        with db.connect() as conn:
            return [(row.uuid, row.deleted == 0 and not row.hidden)
                    for row in conn.execute(query)]

    anywhere: dict[str, set[int]] = defaultdict(set)
    living: dict[str, set[int]] = defaultdict(set)
    for cell_id, rows in audit.everywhere(look).items():
        for uuid, lives in rows:
            anywhere[fold(uuid)].add(cell_id)
            if lives:
                living[fold(uuid)].add(cell_id)
    return {uuid: _Seen(frozenset(cells), frozenset(living[uuid]))
            for uuid, cells in anywhere.items()}


_NOWHERE = _Seen(frozenset(), frozenset())


def _verdict(audit: Audit, cell_id: int, seen: _Seen) -> tuple[str, int | None] | None:
    """(kind, the cell that has the instance) for a mapping to ``cell_id``, or None if fine
    or undecidable (a cell that could not be read may hold the answer)."""
    mapped_to = audit.cell_by_id[cell_id]
    if mapped_to in audit.unreachable or cell_id not in audit.engines:
        return None
    if cell_id in seen.living:
        return None
    if seen.living:
        return MAPPING_IN_WRONG_CELL, (min(seen.living) if len(seen.living) == 1 else None)
    if seen.anywhere or not audit.complete():
        return None  # deleted or hidden there: normal until archived; or not decidable
    return MAPPING_WITHOUT_INSTANCE, None


def check_mappings(audit: Audit) -> None:
    """The instance_mappings rows without a cell: markers, and mappings older than the
    build timeout. (Mappings with a cell are checked from the cells' walks.)"""
    if audit.only is None and audit.found.wants(MAPPING_WITHOUT_CELL, LEFTOVER_MARKER):
        _check_cell_less(audit)


def _judge(audit: Audit, mapping: Any, seen: _Seen, orphans: list[Any],
           moves: list[tuple[Any, int]]) -> None:
    """Report a mapping whose cell lacks its (living) instance, under its mapping's cell:
    mapping_in_wrong_cell if the instance lives elsewhere, mapping_without_instance if no
    cell has it. The repairs --fix may make go to ``orphans`` and ``moves`` (mapping, the
    cell to point it at)."""
    verdict = _verdict(audit, mapping.cell_id, seen)
    mapped_to = audit.cell_by_id[mapping.cell_id]
    if verdict is None or not audit.mine(mapped_to):
        return
    found, (kind, target) = audit.found, verdict
    if kind == MAPPING_WITHOUT_INSTANCE:
        if found.wants(MAPPING_WITHOUT_INSTANCE):
            found.add(MAPPING_WITHOUT_INSTANCE, mapped_to, mapping.instance_uuid,
                      f"no cell has a row for the instance (archived or purged); "
                      f"the mapping to {mapped_to.label} remains", True)
            orphans.append(mapping)
        return
    if not found.wants(MAPPING_IN_WRONG_CELL):
        return
    names = ", ".join(audit.cell_by_id[c].label for c in sorted(seen.living))
    if target is None:
        found.add(MAPPING_IN_WRONG_CELL, mapped_to, mapping.instance_uuid,
                  f"mapped to {mapped_to.label}, but the instance lives in "
                  f"several other cells: {names}", False)
    elif not audit.complete():
        found.add(MAPPING_IN_WRONG_CELL, mapped_to, mapping.instance_uuid,
                  f"mapped to {mapped_to.label}, but the instance lives in {names} "
                  "(not repaired while a cell cannot be read)", False)
    else:
        found.add(MAPPING_IN_WRONG_CELL, mapped_to, mapping.instance_uuid,
                  f"mapped to {mapped_to.label}, but the instance lives in {names}", True)
        moves.append((mapping, target))


def _check_cell_less(audit: Audit) -> None:
    cutoff = audit.now - datetime.timedelta(seconds=audit.build_timeout)
    query = select(im.c.id, im.c.instance_uuid, im.c.project_id, im.c.created_at).where(
        im.c.cell_id.is_(None))
    for rows in keyset_pages(audit.api, query, key=im.c.id, size=PAGE):
        for row in rows:
            if row.project_id == MARKER_PROJECT_ID:
                marker = row.instance_uuid.replace(" ", "-")
                audit.found.add(LEFTOVER_MARKER, None, marker,
                                f"map_instances marker (an unfinished run stopped after "
                                f"instance {marker}); map_instances --reset clears it", False)
            elif row.created_at is None or row.created_at < cutoff:
                since = (f"since {row.created_at.isoformat(' ', 'seconds')}"
                         if row.created_at is not None else "of unknown age")
                audit.found.add(MAPPING_WITHOUT_CELL, None, row.instance_uuid,
                                f"instance mapping has no cell {since} (older than "
                                f"--build-timeout {audit.build_timeout:g} s)", False)


def _repair_mappings(audit: Audit, orphans: list[Row[Any]],
                     moves: list[tuple[Row[Any], int]]) -> None:
    """Delete orphaned mappings and point misplaced ones at their instance's cell.

    Under map_instances' lock, each mapping is read again (locked against
    updates) and the cells are asked again; a mapping that changed, or whose
    instance turned up, is left as it is.
    """
    wanted = {row.id: row.cell_id for row in orphans}
    wanted.update((row.id, row.cell_id) for row, _ in moves)
    targets = {row.id: target for row, target in moves}
    removed, repointed = retried(lambda: _repair_once(audit, wanted, targets),
                                 what="Repairing instance mappings")
    audit.found.repaired(MAPPING_WITHOUT_INSTANCE, removed, len(orphans) - removed)
    audit.found.repaired(MAPPING_IN_WRONG_CELL, repointed, len(moves) - repointed)


def _repair_once(audit: Audit, wanted: dict[int, int], targets: dict[int, int]
                 ) -> tuple[int, int]:
    """One transaction of ``_repair_mappings``: (mappings deleted, mappings repointed)."""
    with write_transaction(audit.api, lock=MARKER_LOCK) as conn:
        query = select(im.c.id, im.c.instance_uuid, im.c.cell_id).where(
            im.c.id.in_(sorted(wanted)))
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        current = [row for row in conn.execute(query) if wanted[row.id] == row.cell_id]
        seen = _where_instances_are(audit, [row.instance_uuid for row in current])
        deleted: list[int] = []
        moved: dict[tuple[int, int], list[int]] = defaultdict(list)
        for row in current:
            verdict = _verdict(audit, row.cell_id, seen.get(fold(row.instance_uuid), _NOWHERE))
            if verdict is None or not audit.complete():
                continue
            if verdict[0] == MAPPING_WITHOUT_INSTANCE and row.id not in targets:
                deleted.append(row.id)
            elif verdict[1] is not None and verdict[1] == targets.get(row.id):
                moved[(row.cell_id, verdict[1])].append(row.id)
        removed = 0
        for ids in chunks(deleted, PAGE):
            removed += conn.execute(delete(im).where(im.c.id.in_(list(ids)))).rowcount
        repointed = 0
        now = utcnow()
        for (old, new), ids in moved.items():
            for part in chunks(ids, PAGE):
                repointed += conn.execute(
                    update(im).where(im.c.id.in_(list(part)), im.c.cell_id == old)
                    .values(cell_id=new, updated_at=now)).rowcount
    return removed, repointed
