"""Host mappings: map a cell's compute hosts in set-based batches, and map_cell_and_hosts.

Cells live in other databases than the API database, so nothing joins across
them: candidate hosts are read from the cell in keyset batches, each batch is
looked up in ``host_mappings`` with one IN query, the unmapped ones are
inserted in one batch, and the batch's compute nodes whose host is mapped to
that cell are marked ``mapped = 1`` with one UPDATE. The API database is
written first, so a run killed between the two steps leaves nodes unmarked,
which the next run marks, never nodes marked whose host is not mapped.

``discover_hosts`` (cellctl.ops.discovery) and ``simple_cell_setup`` build on
``map_hosts`` and ``map_cell_and_hosts`` here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellctl.db import Databases, insert_ignoring_duplicates, write_transaction
from cellctl.errors import CellctlError
from cellctl.ops.common import CELL0_UUID, insert_cell, new_uuid, resolve_transport_url, utcnow
from cellctl.ops.spanning import CellRef
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Result
from cellctl.write_retry import (
    WRITE_RETRIES,
    Contention,
    Retry,
    in_parts,
    retried,
    write_limits,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine, Row
    from sqlalchemy.sql import Select

BATCH_SIZE = 1000  # hosts per round trip; well under every backend's bind-parameter limit
# Held while a batch is looked up and inserted, so concurrent cellctl runs
# take turns per batch instead of colliding. On Galera the lock is one node's
# only: runs through different nodes collide, and the batch is redone.
HOST_MAPPING_LOCK = "host_mappings"
# Write-set bytes of one host mapping, or of one compute node's mapped flag
# (measured on Galera: about 450 for both together), with room to spare.
HOST_ROW_BYTES = 400
NODE_ROW_BYTES = 2000  # a node's row is written whole, before and after (ROW format)


class HostMappingCollision(Contention):
    """Another writer kept mapping the same hosts at the same moment, through every retry."""

    def __init__(self, host: str, last: BaseException) -> None:
        CellctlError.__init__(
            self,
            "Duplicate host mapping was encountered: another program kept mapping the same "
            f"hosts at the same time through {WRITE_RETRIES} retries. Nothing is wrong "
            "with the mappings made so far and it is safe to run the command again. "
            f"Error: Host '{host}' mapping already exists"
        )
        self.host = host
        self.last = last


class _Collided(Retry):
    def __init__(self, hosts: list[str]) -> None:
        super().__init__(f"{len(hosts)} hosts were mapped by another writer meanwhile")
        self.hosts = hosts


@dataclass
class BatchOutcome:
    """What became of one batch of hosts; every set holds the hosts as they were given."""

    created: set[str] = field(default_factory=set)  # mapped to the cell by this call
    in_cell: set[str] = field(default_factory=set)  # mapped to the cell now (created included)
    elsewhere: dict[str, str] = field(default_factory=dict)  # host -> the other cell's UUID

    def add(self, other: BatchOutcome) -> None:
        self.created |= other.created
        self.in_cell |= other.in_cell
        self.elsewhere.update(other.elsewhere)


def map_hosts(api: Engine, cell: CellRef, hosts: Iterable[str]) -> BatchOutcome:
    """Map every host of one batch that has no mapping yet to ``cell``.

    One transaction per part of the batch that fits the server's write limits,
    each redone when it loses to a concurrent writer (a collision, a deadlock,
    a Galera certification conflict). Raises HostMappingCollision or Contention
    when every retry lost.
    """
    wanted = sorted(set(hosts))  # one order for all runs: row locks taken alike
    outcome = BatchOutcome()

    def write(part: Sequence[str], _last: bool) -> None:
        try:
            outcome.add(retried(lambda: _map_once(api, cell, list(part)),
                                what=f"Mapping hosts to {cell.label}"))
        except Contention as exc:
            if isinstance(exc.last, _Collided):
                unplaced = exc.last.hosts
                raise HostMappingCollision(_first_mapped(api, unplaced) or unplaced[0],
                                           exc.last) from None
            raise

    in_parts(wanted, write_limits(api), HOST_ROW_BYTES, write)
    return outcome


def _map_once(api: Engine, cell: CellRef, wanted: list[str]) -> BatchOutcome:
    from cellctl.tables.api import host_mappings

    outcome = BatchOutcome()
    with write_transaction(api, lock=HOST_MAPPING_LOCK) as conn:
        key = host_key(conn.dialect.name)
        existing = _mapped_cells(conn, wanted, key)
        new: dict[str, str] = {}  # key -> the first host of the batch with that key
        for host in wanted:
            found = existing.get(key(host))
            if found is None:
                new.setdefault(key(host), host)
                outcome.in_cell.add(host)
            elif found[0] == cell.id:
                outcome.in_cell.add(host)
            else:
                outcome.elsewhere[host] = found[1]
        now = utcnow()
        rows = [{"cell_id": cell.id, "host": host, "created_at": now} for host in new.values()]
        if insert_ignoring_duplicates(conn, host_mappings, rows) != len(rows):
            # Someone mapped one of them since the look-up: undo the batch, look again.
            raise _Collided(list(new.values()))
    outcome.created = set(new.values())
    return outcome


def host_key(dialect: str) -> Callable[[str], str]:
    """How the database compares host names in its unique key.

    MySQL/MariaDB's default collations ignore case and trailing spaces, so
    ``Host1`` and ``host1`` are one host there (exact for ASCII names).
    """
    if dialect in ("mysql", "mariadb"):
        return lambda host: host.casefold().rstrip(" ")
    return lambda host: host


def _mapped_cells(
    conn: Connection, hosts: Sequence[str], key: Callable[[str], str]
) -> dict[str, tuple[int, str]]:
    """key(host) -> (cell id, cell UUID) for those of ``hosts`` that are mapped."""
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm
    from cellctl.tables.api import host_mappings as hm

    cell_ids: dict[str, int] = {}
    for start in range(0, len(hosts), BATCH_SIZE):
        # No JOIN with cell_mappings: MariaDB then plans the IN list badly (5x slower).
        rows = conn.execute(
            select(hm.c.host, hm.c.cell_id).where(hm.c.host.in_(hosts[start : start + BATCH_SIZE]))
        )
        cell_ids.update((key(row.host), row.cell_id) for row in rows)
    uuids = dict(conn.execute(
        select(cm.c.id, cm.c.uuid).where(cm.c.id.in_(sorted(set(cell_ids.values()))))
    ).all()) if cell_ids else {}
    return {host: (cell_id, uuids[cell_id]) for host, cell_id in cell_ids.items()}


def _first_mapped(api: Engine, hosts: list[str]) -> str | None:
    """One of ``hosts`` that another writer mapped, to name it in the error."""
    from sqlalchemy import select

    from cellctl.tables.api import host_mappings as hm

    with api.connect() as conn:
        return conn.execute(
            select(hm.c.host).where(hm.c.host.in_(hosts[:BATCH_SIZE])).order_by(hm.c.host)
        ).scalar()


def mark_nodes_mapped(cell_db: Engine, node_ids: Iterable[int]) -> int:
    """Set ``mapped = 1`` on these compute nodes; return how many there were."""
    from cellctl.tables.cell import compute_nodes as cn

    return _mark_mapped(cell_db, cn.c.id, node_ids)


def mark_hosts_mapped(cell_db: Engine, hosts: Iterable[str]) -> int:
    """Set ``mapped = 1`` on every live, unmarked compute node of ``hosts``."""
    from sqlalchemy import or_

    from cellctl.tables.cell import compute_nodes as cn

    return _mark_mapped(cell_db, cn.c.host, hosts, cn.c.deleted == 0,
                        or_(cn.c.mapped < 1, cn.c.mapped.is_(None)))


def _mark_mapped(cell_db: Engine, column: Any, values: Iterable[Any], *where: Any) -> int:
    """One UPDATE per BATCH_SIZE values, in transactions that fit the server, each redone
    when it loses to a concurrent writer (runs through other Galera nodes mark the same
    nodes); setting a flag twice is harmless."""
    from cellctl.tables.cell import compute_nodes as cn

    wanted = sorted(set(values))
    now = utcnow()

    def once(part: Sequence[Any]) -> int:
        changed = 0
        with cell_db.begin() as conn:
            for start in range(0, len(part), BATCH_SIZE):
                changed += conn.execute(
                    cn.update().where(column.in_(part[start : start + BATCH_SIZE]), *where)
                    .values(mapped=1, updated_at=now)
                ).rowcount
        return changed

    def write(part: Sequence[Any], _last: bool) -> int:
        return retried(lambda: once(part), what="Marking compute nodes mapped")

    return sum(in_parts(wanted, write_limits(cell_db), NODE_ROW_BYTES, write))


# --- reading candidates from a cell, one keyset page at a time ----------------


def live_nodes() -> Select[Any]:
    """Live compute nodes that name a host, as (id, host, uuid)."""
    from sqlalchemy import select

    from cellctl.tables.cell import compute_nodes as cn

    return select(cn.c.id, cn.c.host, cn.c.uuid).where(cn.c.deleted == 0, cn.c.host.is_not(None))


def unmapped_nodes() -> Select[Any]:
    """Live compute nodes not yet marked mapped; NULL counts as unmapped (Nova skips those)."""
    from sqlalchemy import or_

    from cellctl.tables.cell import compute_nodes as cn

    return live_nodes().where(or_(cn.c.mapped < 1, cn.c.mapped.is_(None)))


def compute_services() -> Select[Any]:
    """Live nova-compute services (disabled ones too), as (id, host)."""
    from sqlalchemy import select

    from cellctl.ops.servicegroup import COMPUTE_BINARY
    from cellctl.tables.cell import services as sv

    return select(sv.c.id, sv.c.host).where(
        sv.c.binary == COMPUTE_BINARY, sv.c.deleted == 0, sv.c.host.is_not(None)
    )


def page_after(cell_db: Engine, query: Select[Any], after_id: int) -> list[Row[Any]]:
    """The next BATCH_SIZE rows of ``query`` (whose first column is ``id``) after ``after_id``.

    A short connection per page: no read stays open while the same database
    is written, which SQLite would otherwise make the writer wait for.
    """
    id_column = query.selected_columns[0]
    with cell_db.connect() as conn:
        return list(conn.execute(query.where(id_column > after_id).order_by(id_column)
                                 .limit(BATCH_SIZE)))


def count_rows(cell_db: Engine, query: Select[Any]) -> int:
    from sqlalchemy import func, select

    with cell_db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar() or 0)


# --- map_cell_and_hosts ---------------------------------------------------------


def map_cell_and_hosts(
    dbs: Databases,
    *,
    transport_url: str | None = None,
    name: str | None = None,
    verbose: bool = False,
    progress: Progress = NO_PROGRESS,
) -> Result:
    """Map ``[database]`` as a cell with its compute hosts (Nova's map_cell_and_hosts).

    Hosts go to the cell some of them are already mapped to, else to the cell
    whose database is ``[database]``, else to a new cell with ``name`` and the
    transport URL. ``data``: ``cell_uuid`` (None when there is no host),
    ``cell_created``, ``compute_nodes`` (live nodes read) and ``hosts_mapped``
    (the hosts this run mapped).
    """
    result = Result()
    transport = resolve_transport_url(dbs, transport_url, result)
    if transport is None:
        return result
    local = dbs.local_cell
    survey = _survey_local_hosts(dbs.api, local, result if verbose else None)
    result.data = {"cell_uuid": survey.last_cell_uuid, "cell_created": False,
                   "compute_nodes": survey.nodes, "hosts_mapped": []}
    if survey.nodes == 0:
        return result.info("No hosts found to map to cell, exiting.")
    if not survey.any_unmapped:
        return result.info("All hosts are already mapped to cell(s).")

    cell, created = _target_cell(dbs, survey.last_cell_uuid, name, transport)
    mapped: list[str] = []
    progress.start(f"Mapping hosts to {cell.label}", survey.nodes)
    try:
        after = 0
        while batch := page_after(local, live_nodes(), after):
            outcome = map_hosts(dbs.api, cell, [row.host for row in batch])
            mark_nodes_mapped(local, [row.id for row in batch if row.host in outcome.in_cell])
            mapped.extend(sorted(outcome.created))
            progress.advance(len(batch))
            after = batch[-1].id
    finally:
        progress.finish()
    if verbose:
        result.info(cell.uuid)
    result.data.update(cell_uuid=cell.uuid, cell_created=created, hosts_mapped=mapped)
    return result


@dataclass
class _Survey:
    nodes: int = 0
    any_unmapped: bool = False
    last_cell_uuid: str | None = None  # the cell of the last already-mapped node, as Nova picks


def _survey_local_hosts(api: Engine, local: Engine, verbose_to: Result | None) -> _Survey:
    survey = _Survey()
    after = 0
    while batch := page_after(local, live_nodes(), after):
        with api.connect() as conn:
            key = host_key(conn.dialect.name)
            mapped = _mapped_cells(conn, sorted({row.host for row in batch}), key)
        for row in batch:
            found = mapped.get(key(row.host))
            if found is None:
                survey.any_unmapped = True
                continue
            survey.last_cell_uuid = found[1]
            if verbose_to is not None:
                verbose_to.info(f"Host {row.host} is already mapped to cell {found[1]}")
        survey.nodes += len(batch)
        after = batch[-1].id
    return survey


def _target_cell(
    dbs: Databases, mapped_cell_uuid: str | None, name: str | None, transport: str
) -> tuple[CellRef, bool]:
    """The cell to map into, and whether it was created now.

    Looking for a cell that already has ``[database]`` (rather than always
    creating one, as nova-manage does) makes a run killed after creating the
    cell, or two runs at once, end with one cell.
    """
    from sqlalchemy import select

    from cellctl.ops.cells import CELL_LOCK
    from cellctl.tables.api import cell_mappings as cm

    database = dbs.settings.database_connection.value
    with write_transaction(dbs.api, lock=CELL_LOCK) as conn:
        rows = conn.execute(
            select(cm.c.id, cm.c.uuid, cm.c.name, cm.c.database_connection).order_by(cm.c.id)
        ).all()
        for row in rows:
            if row.uuid == mapped_cell_uuid or (
                mapped_cell_uuid is None and row.uuid != CELL0_UUID
                and dbs.expand_database_url(row.database_connection) == database
            ):
                return CellRef(row.id, row.uuid, row.name, row.database_connection), False
        cell_uuid = new_uuid()
        cell_id = insert_cell(conn, cell_uuid, name, transport, database)
    return CellRef(cell_id, cell_uuid, name, database), True
