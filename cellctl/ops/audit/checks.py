"""The checks of ``audit``, and the repairs of ``audit --fix``.

The API database and the cells are different databases, so nothing joins
across them. Every check walks one side in keyset pages and looks each page
up on the other side with one ``IN`` query per database; lookups in several
cells run in parallel, one thread per cell. Memory is a few pages, whatever
the size of the cloud.

A repair is made page by page as the walk finds it, in a transaction that
holds the lock the concurrent writer of the same rows takes (``map_instances``'
MARKER_LOCK for instance mappings, ``discover_hosts``' HOST_MAPPING_LOCK for
host mappings) and re-reads the condition first: what a concurrent run or
Nova changed in between is left as it is, never undone and never duplicated.
"""

from __future__ import annotations

import datetime
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from cellctl.cells.reach import CellUnreachable, cell_access
from cellctl.cells.refs import CellRef
from cellctl.errors import CellctlError
from cellctl.paging import chunks, keyset_pages

if TYPE_CHECKING:
    from sqlalchemy import Column, Select
    from sqlalchemy.engine import Engine, Row

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

# Keys per page and per IN list: large enough that round trips do not
# dominate, well under every backend's bind-parameter limit.
PAGE = 5000


@dataclass(frozen=True)
class Finding:
    kind: str
    cell_uuid: str | None
    cell_name: str | None
    subject: str
    detail: str
    fixable: bool

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "cell_uuid": self.cell_uuid, "cell_name": self.cell_name,
                "subject": self.subject, "detail": self.detail, "fixable": self.fixable}


@dataclass
class Findings:
    """Every finding counted, the first ``limit`` of each kind kept; thread-safe."""

    kinds: Sequence[str]
    limit: int
    fix: bool
    listed: dict[str, list[Finding]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    fixed: dict[str, int] = field(default_factory=dict)
    # Findings a re-check under the lock found gone (a concurrent writer repaired them).
    vanished: dict[str, int] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)  # cell UUID -> why
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
                self.listed[kind].append(Finding(
                    kind, cell.uuid if cell else None, cell.name if cell else None,
                    subject, detail, fixable))

    def repaired(self, kind: str, fixed: int, vanished: int = 0) -> None:
        with self._lock:
            self.fixed[kind] += fixed
            self.vanished[kind] += vanished

    def lost(self, cell: CellRef, reason: str) -> None:
        with self._lock:
            self.unreachable.setdefault(cell.uuid, reason)

    def is_lost(self, cell: CellRef) -> bool:
        return cell.uuid in self.unreachable

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

    def __post_init__(self) -> None:
        self.cell_by_id = {cell.id: cell for cell in self.cells}

    @property
    def fix(self) -> bool:
        return self.found.fix

    def mine(self, cell: CellRef) -> bool:
        """Whether ``cell``'s findings are reported (all, or the --cell_uuid one)."""
        return self.only is None or cell.id == self.only.id

    def readable(self) -> list[CellRef]:
        return [c for c in self.cells if c.id in self.engines and not self.found.is_lost(c)]

    def complete(self) -> bool:
        """Whether every cell could be read so far (absence anywhere can be concluded)."""
        return not self.found.unreachable

    def in_cell(self, cell: CellRef, work: Callable[[Engine], T]) -> T:
        """Run ``work`` on ``cell``'s database; its failure is the cell's (CellUnreachable)."""
        with cell_access(cell):
            if self.found.is_lost(cell):
                raise CellUnreachable(cell, CellctlError(self.found.unreachable[cell.uuid]))
            return work(self.engines[cell.id])

    def per_cell(self, jobs: dict[int, Callable[[Engine], T]]) -> dict[int, T]:
        """Each cell's own job (cell id -> job), all at once; a cell that fails is
        recorded as lost and left out of the answer."""
        targets = [self.cell_by_id[cell_id] for cell_id in jobs]
        targets = [c for c in targets if c.id in self.engines and not self.found.is_lost(c)]
        futures = {c.id: self.pool.submit(self.in_cell, c, jobs[c.id]) for c in targets}
        answers: dict[int, T] = {}
        for cell in targets:
            try:
                answers[cell.id] = futures[cell.id].result()
            except CellUnreachable as exc:
                self.found.lost(cell, str(exc))
        return answers

    def everywhere(self, work: Callable[[Engine], T],
                   cells: Sequence[CellRef] | None = None) -> dict[int, T]:
        """``work`` on every readable cell (or ``cells``) at once; cell id -> its answer.

        A cell that fails is recorded as lost and left out of the answer.
        """
        targets = cells if cells is not None else self.cells
        return self.per_cell({cell.id: work for cell in targets})


# --- keyset pages --------------------------------------------------------------


def cell_pages(audit: Audit, cell: CellRef, query: Select[Any],
               key: Column[Any]) -> Iterator[list[Row[Any]]]:
    """``pages`` of a cell's database; a failure to read any page is the cell's."""
    reading = audit.in_cell(cell, lambda db: keyset_pages(db, query, key=key, size=PAGE))
    while True:
        with cell_access(cell):
            rows = next(reading, None)
        if rows is None:
            return
        yield rows


def _fold(value: str) -> str:
    # MySQL compares keys ignoring case; answers are matched to the keys asked the same way.
    return value.casefold()


# Below this many keys a short count is followed by fetching the keys themselves.
SMALL = 500
SPLIT = 10


def absent(keys: Sequence[str], count: Callable[[Sequence[str]], int],
           present: Callable[[Sequence[str]], set[str]]) -> list[str]:
    """Those of ``keys`` (distinct, unique on the other side) that the other side lacks.

    The other side is asked for a count first; only where the count falls
    short are the keys split and counted again, and the keys themselves
    fetched for a small part: a consistent page costs one COUNT and moves no
    rows, which is what makes a cloud-wide walk cheap.
    """
    if not keys or count(keys) >= len(keys):
        return []
    if len(keys) <= SMALL:
        found = present(keys)
        return [key for key in keys if _fold(key) not in found]
    size = -(-len(keys) // SPLIT)
    return [key for part in chunks(keys, size) for key in absent(part, count, present)]


def _counter(engine: Engine, column: Column[str], *where: Any
             ) -> tuple[Callable[[Sequence[str]], int], Callable[[Sequence[str]], set[str]]]:
    """(count, present) over ``column`` of one database, for ``absent``."""
    from sqlalchemy import func, select

    def count(keys: Sequence[str]) -> int:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(column.table)
                                    .where(column.in_(list(keys)), *where)).scalar_one())

    def present(keys: Sequence[str]) -> set[str]:
        with engine.connect() as conn:
            return {_fold(key) for key in conn.execute(
                select(column).where(column.in_(list(keys)), *where)).scalars()}

    return count, present


# --- instances of each cell against instance_mappings ------------------------------


def check_instances(audit: Audit, cell: CellRef) -> None:
    """Every instance row of the cell against instance_mappings, in one walk.

    The cell's instances are walked in UUID order (an index-only scan); each
    page is counted among the mappings to this cell (one IN query, on a
    contiguous range of the API's index, moving no rows), and only a page
    whose count falls short is split and the mappings of a small part
    fetched. That finds instance_without_mapping (a visible instance with no
    mapping, what map_instances maps) and the candidates of
    mapping_in_wrong_cell (an instance mapped to another cell). When the
    walk met fewer mappings to this cell than the API database has, some
    mapping's instance is not in the cell: ``_check_orphans_of`` looks.
    """
    from sqlalchemy import select

    from cellctl.tables.cell import instances as i

    met = 0
    # Repairs wait until a page's worth is found: one locked transaction each.
    to_map: list[str] = []
    to_move: list[tuple[Any, int]] = []
    for rows in cell_pages(audit, cell, select(i.c.uuid), i.c.uuid):
        here, unmapped, elsewhere = _mapped_elsewhere(audit, cell, [row.uuid for row in rows])
        met += here
        if unmapped and audit.found.wants(INSTANCE_WITHOUT_MAPPING) and audit.mine(cell):
            to_map += _unmapped_instances(audit, cell, unmapped)
        if elsewhere and audit.found.wants(MAPPING_IN_WRONG_CELL):
            to_move += _check_misplaced(audit, cell, elsewhere)
        if audit.fix and len(to_map) + len(to_move) >= PAGE:
            _repair_instances(audit, cell, to_map, to_move)
            to_map, to_move = [], []
    if audit.fix:
        _repair_instances(audit, cell, to_map, to_move)
    if (audit.found.wants(MAPPING_WITHOUT_INSTANCE) and audit.mine(cell)
            and not audit.found.is_lost(cell)):
        _check_orphans_of(audit, cell, met)


def _repair_instances(audit: Audit, cell: CellRef, to_map: list[str],
                      to_move: list[tuple[Any, int]]) -> None:
    if to_map:
        _map_instances(audit, cell, to_map)
    if to_move:
        _repair_mappings(audit, [], to_move)


def _mapped_elsewhere(audit: Audit, cell: CellRef, uuids: Sequence[str]
                      ) -> tuple[int, list[str], list[Any]]:
    """(how many of ``uuids`` are mapped to ``cell``, those not mapped at all, the mappings
    (instance_uuid, id, cell_id) of those mapped elsewhere), counting before fetching."""
    from sqlalchemy import func, select

    from cellctl.tables.api import instance_mappings as im

    with audit.api.connect() as conn:
        here = int(conn.execute(select(func.count()).select_from(im).where(
            im.c.instance_uuid.in_(list(uuids)), im.c.cell_id == cell.id)).scalar_one())
        if here >= len(uuids):
            return here, [], []
        if len(uuids) > SMALL:
            size = -(-len(uuids) // SPLIT)
            total, lacking, others = 0, list[str](), list[Any]()
            for part in chunks(uuids, size):
                n, u, e = _mapped_elsewhere(audit, cell, part)
                total, lacking, others = total + n, lacking + u, others + e
            return total, lacking, others
        mappings = {_fold(m.instance_uuid): m for m in conn.execute(
            select(im.c.instance_uuid, im.c.id, im.c.cell_id)
            .where(im.c.instance_uuid.in_(list(uuids))))}
    unmapped = [uuid for uuid in uuids if _fold(uuid) not in mappings]
    elsewhere = [m for m in mappings.values() if m.cell_id not in (cell.id, None)]
    return here, unmapped, elsewhere


def _unmapped_instances(audit: Audit, cell: CellRef, uuids: list[str]) -> list[str]:
    """Report the visible ones of ``uuids`` (unmapped instances); those --fix may map."""
    from sqlalchemy import select

    from cellctl.cells.queries import visible_instances
    from cellctl.mappings.instances import mapping_columns
    from cellctl.tables.cell import instances as i

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
    from sqlalchemy import select

    from cellctl.cells.queries import visible_instances
    from cellctl.mappings.instances import MAPPING_ROW_BYTES, insert_mappings, mapping_columns
    from cellctl.tables.cell import instances as i
    from cellctl.writes.galera import in_parts, retried, write_limits
    from cellctl.writes.locks import MARKER_LOCK
    from cellctl.writes.transactions import write_transaction

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
    from sqlalchemy import false, select

    from cellctl.tables.cell import instances as i

    query = select(i.c.uuid, i.c.deleted, i.c.hidden).where(i.c.uuid.in_(list(uuids)))

    def look(db: Engine) -> list[tuple[str, bool]]:
        with db.connect() as conn:
            return [(row.uuid, row.deleted == 0 and (row.hidden is None or row.hidden == false()))
                    for row in conn.execute(query)]

    anywhere: dict[str, set[int]] = defaultdict(set)
    living: dict[str, set[int]] = defaultdict(set)
    for cell_id, rows in audit.everywhere(look).items():
        for uuid, lives in rows:
            anywhere[_fold(uuid)].add(cell_id)
            if lives:
                living[_fold(uuid)].add(cell_id)
    return {uuid: _Seen(frozenset(cells), frozenset(living[uuid]))
            for uuid, cells in anywhere.items()}


_NOWHERE = _Seen(frozenset(), frozenset())


def _verdict(audit: Audit, cell_id: int, seen: _Seen) -> tuple[str, int | None] | None:
    """(kind, the cell that has the instance) for a mapping to ``cell_id``, or None if fine
    or undecidable (a cell that could not be read may hold the answer)."""
    mapped_to = audit.cell_by_id[cell_id]
    if audit.found.is_lost(mapped_to) or cell_id not in audit.engines:
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


def _check_misplaced(audit: Audit, cell: CellRef, mappings: list[Any]
                     ) -> list[tuple[Any, int]]:
    """mapping_in_wrong_cell among live instances of ``cell`` mapped to other cells: each
    reported once, from the first cell (by id) where it lives, under its mapping's cell.
    Returns the repairs --fix may make: (mapping, the cell to point it at)."""
    seen = _where_instances_are(audit, [m.instance_uuid for m in mappings])
    moves: list[tuple[Row[Any], int]] = []
    for mapping in mappings:
        found = seen.get(_fold(mapping.instance_uuid), _NOWHERE)
        verdict = _verdict(audit, mapping.cell_id, found)
        if verdict is None or verdict[0] != MAPPING_IN_WRONG_CELL:
            continue
        if min(found.living) != cell.id:
            continue  # another cell where it lives reports it
        mapped_to = audit.cell_by_id[mapping.cell_id]
        if not audit.mine(mapped_to):
            continue
        names = ", ".join(audit.cell_by_id[c].label for c in sorted(found.living))
        target = verdict[1]
        if target is None:
            audit.found.add(MAPPING_IN_WRONG_CELL, mapped_to, mapping.instance_uuid,
                            f"mapped to {mapped_to.label}, but the instance lives in "
                            f"several other cells: {names}", False)
        elif not audit.complete():
            audit.found.add(MAPPING_IN_WRONG_CELL, mapped_to, mapping.instance_uuid,
                            f"mapped to {mapped_to.label}, but the instance lives in {names} "
                            "(not repaired while a cell cannot be read)", False)
        else:
            audit.found.add(MAPPING_IN_WRONG_CELL, mapped_to, mapping.instance_uuid,
                            f"mapped to {mapped_to.label}, but the instance lives in {names}",
                            True)
            moves.append((mapping, target))
    return moves


def _check_orphans_of(audit: Audit, cell: CellRef, met: int) -> None:
    """mapping_without_instance: if the API database has more mappings to ``cell`` than
    the cell's walk met, its mappings are walked, each page counted against the cell's
    instances (an index-only look-up), and the mappings whose instance the cell lacks
    looked up in every cell: those no cell has are orphans."""
    from sqlalchemy import func, select

    from cellctl.tables.api import instance_mappings as im
    from cellctl.tables.cell import instances as i

    with audit.api.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(im)
                                 .where(im.c.cell_id == cell.id)).scalar_one())
    if total <= met:
        return
    query = select(im.c.id, im.c.instance_uuid, im.c.cell_id).where(im.c.cell_id == cell.id)
    for rows in keyset_pages(audit.api, query, key=im.c.id, size=PAGE):
        uuids = [row.instance_uuid for row in rows]

        def lacking(db: Engine, keys: list[str] = uuids) -> list[str]:
            return absent(keys, *_counter(db, i.c.uuid))

        missing = audit.in_cell(cell, lacking)
        if missing:
            gone = {_fold(u) for u in missing}
            _check_orphans(audit, [r for r in rows if _fold(r.instance_uuid) in gone])


def _check_orphans(audit: Audit, rows: list[Row[Any]]) -> None:
    seen = _where_instances_are(audit, [row.instance_uuid for row in rows])
    orphans = []
    for row in rows:
        verdict = _verdict(audit, row.cell_id, seen.get(_fold(row.instance_uuid), _NOWHERE))
        if verdict is None or verdict[0] != MAPPING_WITHOUT_INSTANCE:
            continue  # elsewhere: a misplaced mapping, reported by the cell that has it
        cell = audit.cell_by_id[row.cell_id]
        audit.found.add(MAPPING_WITHOUT_INSTANCE, cell, row.instance_uuid,
                        f"no cell has a row for the instance (archived or purged); "
                        f"the mapping to {cell.label} remains", True)
        orphans.append(row)
    if audit.fix and orphans:
        _repair_mappings(audit, orphans, [])


def _check_cell_less(audit: Audit) -> None:
    from sqlalchemy import select

    from cellctl.mappings.marker import MARKER_PROJECT_ID
    from cellctl.tables.api import instance_mappings as im

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
    from cellctl.writes.galera import retried

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
    from sqlalchemy import delete, select, update

    from cellctl.clock import utcnow
    from cellctl.tables.api import instance_mappings as im
    from cellctl.writes.locks import MARKER_LOCK
    from cellctl.writes.transactions import write_transaction

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
            verdict = _verdict(audit, row.cell_id, seen.get(_fold(row.instance_uuid), _NOWHERE))
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


# --- hosts ---------------------------------------------------------------------------


def _live_hosts_in(hosts: Sequence[str]) -> Callable[[Engine], set[str]]:
    """A cell-database reader: those of ``hosts`` with a live compute node or a live
    nova-compute service there (folded)."""
    from cellctl.cells.queries import compute_services, live_nodes
    from cellctl.tables.cell import compute_nodes as cn
    from cellctl.tables.cell import services as sv

    wanted = list(hosts)

    def read(db: Engine) -> set[str]:
        with db.connect() as conn:
            found = set(conn.execute(live_nodes().with_only_columns(cn.c.host)
                                     .where(cn.c.host.in_(wanted)).distinct()).scalars())
            found.update(conn.execute(compute_services().with_only_columns(sv.c.host)
                                      .where(sv.c.host.in_(wanted)).distinct()).scalars())
        return {_fold(host) for host in found}

    return read


def _busy_hosts(hosts: list[str]) -> Callable[[Engine], set[str]]:
    """A cell-database reader: those of ``hosts`` with live instances (delete_host's check)."""
    from cellctl.cells.queries import hosts_with_instances

    def read(db: Engine) -> set[str]:
        with db.connect() as conn:
            return {_fold(host) for host in conn.execute(hosts_with_instances(hosts)).scalars()}

    return read


def check_host_mappings(audit: Audit, cell: CellRef) -> None:
    """host_mapping_without_host: the cell's host mappings whose host has neither a live
    compute node nor a live nova-compute service in the cell."""
    from sqlalchemy import select

    from cellctl.tables.api import host_mappings as hm

    query = select(hm.c.id, hm.c.host).where(hm.c.cell_id == cell.id)
    for rows in keyset_pages(audit.api, query, key=hm.c.id, size=PAGE):
        hosts = [row.host for row in rows]
        live = audit.in_cell(cell, _live_hosts_in(hosts))
        gone = [row for row in rows if _fold(row.host) not in live]
        if not gone:
            continue

        busy = audit.in_cell(cell, _busy_hosts([row.host for row in gone]))
        for row in gone:
            if _fold(row.host) in busy:
                audit.found.add(HOST_MAPPING_WITHOUT_HOST, cell, row.host,
                                "no live compute node or nova-compute service, but live "
                                "instances on the host: not deleted (see delete_host)", False)
            else:
                audit.found.add(HOST_MAPPING_WITHOUT_HOST, cell, row.host,
                                "no live compute node or nova-compute service in the cell",
                                True)
        free = [row for row in gone if _fold(row.host) not in busy]
        if audit.fix and free:
            _delete_host_mappings(audit, cell, free)


def _delete_host_mappings(audit: Audit, cell: CellRef, rows: list[Row[Any]]) -> None:
    """Delete these host mappings, under discover_hosts' lock, after asking the cell again
    (a host that came back, or got an instance, keeps its mapping)."""
    from sqlalchemy import delete

    from cellctl.tables.api import host_mappings as hm
    from cellctl.writes.galera import retried
    from cellctl.writes.locks import HOST_MAPPING_LOCK
    from cellctl.writes.transactions import write_transaction

    hosts = [row.host for row in rows]
    live_in, busy_in = _live_hosts_in(hosts), _busy_hosts(hosts)

    def in_use(db: Engine) -> set[str]:
        return busy_in(db) | live_in(db)

    def once() -> int:
        with write_transaction(audit.api, lock=HOST_MAPPING_LOCK) as conn:
            used = audit.in_cell(cell, in_use)
            ids = [row.id for row in rows if _fold(row.host) not in used]
            return sum(int(conn.execute(
                delete(hm).where(hm.c.id.in_(list(part)), hm.c.cell_id == cell.id)).rowcount)
                for part in chunks(ids, PAGE))

    removed = retried(once, what="Deleting host mappings the audit found")
    audit.found.repaired(HOST_MAPPING_WITHOUT_HOST, removed, len(rows) - removed)


def check_cell_hosts(audit: Audit, cell: CellRef) -> None:
    """The cell's hosts: node_mapped_without_host_mapping and host_in_several_cells.

    The hosts of live compute nodes are walked in host order (the cell's own
    order: a keyset on its own collation), then those of live nova-compute
    services that have no live node; each page is looked up in host_mappings
    and in every other cell, all at once.
    """
    from sqlalchemy import func

    from cellctl.cells.queries import compute_services, live_nodes
    from cellctl.tables.cell import compute_nodes as cn
    from cellctl.tables.cell import services as sv

    mapped = func.max(cn.c.mapped).label("mapped")
    node_hosts = live_nodes().with_only_columns(cn.c.host, mapped).group_by(cn.c.host)
    for rows in cell_pages(audit, cell, node_hosts, cn.c.host):
        if audit.found.wants(NODE_MAPPED_WITHOUT_HOST_MAPPING):
            _check_marked_nodes(audit, cell, [r.host for r in rows if (r.mapped or 0) >= 1])
        if audit.found.wants(HOST_IN_SEVERAL_CELLS):
            _check_other_cells(audit, cell, [r.host for r in rows])
    if not audit.found.wants(HOST_IN_SEVERAL_CELLS):
        return
    service_hosts = compute_services().with_only_columns(sv.c.host).group_by(sv.c.host)
    for rows in cell_pages(audit, cell, service_hosts, sv.c.host):
        hosts = [r.host for r in rows]

        def with_nodes(db: Engine, hosts: list[str] = hosts) -> set[str]:
            with db.connect() as conn:
                return {_fold(h) for h in conn.execute(
                    live_nodes().with_only_columns(cn.c.host)
                    .where(cn.c.host.in_(hosts)).distinct()).scalars()}

        counted = audit.in_cell(cell, with_nodes)
        _check_other_cells(audit, cell, [h for h in hosts if _fold(h) not in counted])


def _check_marked_nodes(audit: Audit, cell: CellRef, hosts: list[str]) -> None:
    """Hosts whose live nodes are marked mapped but that have no host mapping."""
    from sqlalchemy import select

    from cellctl.tables.api import host_mappings as hm

    if not hosts:
        return
    with audit.api.connect() as conn:
        known = {_fold(h) for h in conn.execute(
            select(hm.c.host).where(hm.c.host.in_(hosts))).scalars()}
    missing = [h for h in hosts if _fold(h) not in known]
    for host in missing:
        audit.found.add(NODE_MAPPED_WITHOUT_HOST_MAPPING, cell, host,
                        "compute node marked mapped = 1 but the host has no host mapping "
                        "(discover_hosts never looks at it again)", True)
    if audit.fix and missing:
        _map_marked_hosts(audit, cell, missing)


def _map_marked_hosts(audit: Audit, cell: CellRef, hosts: list[str]) -> None:
    """Map the hosts to the cell with discover_hosts' own batch (map_hosts), which looks
    for their mappings again under its lock: a host someone mapped meanwhile is kept."""
    from cellctl.cells.queries import live_nodes
    from cellctl.mappings.hosts import map_hosts
    from cellctl.tables.cell import compute_nodes as cn

    def still_marked(db: Engine) -> list[str]:
        with db.connect() as conn:
            return list(conn.execute(
                live_nodes().with_only_columns(cn.c.host)
                .where(cn.c.host.in_(hosts), cn.c.mapped >= 1).distinct()).scalars())

    current = audit.in_cell(cell, still_marked)
    outcome = map_hosts(audit.api, cell, current)
    audit.found.repaired(NODE_MAPPED_WITHOUT_HOST_MAPPING, len(outcome.created),
                         len(hosts) - len(outcome.created))


def _check_other_cells(audit: Audit, cell: CellRef, hosts: list[str]) -> None:
    """host_in_several_cells for ``hosts`` of ``cell``: one finding per host, from the
    first cell (by id) that has it, naming every cell that has it."""
    if not hosts:
        return
    others = [c for c in audit.cells if c.id != cell.id and not c.is_cell0]
    if not others:
        return
    answers = audit.everywhere(_live_hosts_in(hosts), others)
    for host in hosts:
        key = _fold(host)
        holders = sorted([cell.id] + [cid for cid, found in answers.items() if key in found])
        if len(holders) < 2:
            continue
        if audit.only is None and holders[0] != cell.id:
            continue  # reported from the first cell that has it
        names = ", ".join(audit.cell_by_id[c].label for c in holders)
        audit.found.add(HOST_IN_SEVERAL_CELLS, cell, host,
                        f"live compute nodes or services in {len(holders)} cells: {names}",
                        False)

