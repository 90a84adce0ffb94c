"""Host mappings in set-based batches: the engine under discover_hosts and
map_cell_and_hosts (and the audit's repairs).

Cells live in other databases than the API database, so nothing joins across
them: candidate hosts are read from the cell in keyset pages
(cellctl.paging), each batch is looked up in ``host_mappings`` with one IN
query, the unmapped ones are inserted in one batch, and the batch's compute
nodes whose host is mapped to that cell are marked ``mapped = 1`` with one
UPDATE. The API database is written first, so a run killed between the two
steps leaves nodes unmarked, which the next run marks, never nodes marked
whose host is not mapped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cellctl.cells.refs import CellRef
from cellctl.clock import utcnow
from cellctl.paging import BATCH_SIZE, chunks
from cellctl.result import plural
from cellctl.writes.galera import WRITE_RETRIES, Contention, Retry, in_parts, retried, write_limits
from cellctl.writes.locks import HOST_MAPPING_LOCK
from cellctl.writes.transactions import insert_ignoring_duplicates, write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

# Write-set bytes of one host mapping, and of one compute node's mapped flag (the
# row is replicated whole, before and after), with room to spare: measured on
# Galera about 450 for both together, with Nova's larger node rows more.
HOST_ROW_BYTES = 400
NODE_ROW_BYTES = 2000


class HostMappingCollision(Contention):
    """Another writer kept mapping the same hosts at the same moment, through every retry."""

    def __init__(self, host: str, last: BaseException) -> None:
        super().__init__("Mapping hosts", last, message=(
            "Duplicate host mapping was encountered: another program kept mapping the same "
            f"hosts at the same time through {WRITE_RETRIES} retries. Nothing is wrong "
            "with the mappings made so far and it is safe to run the command again. "
            f"Error: Host '{host}' mapping already exists"
        ))
        self.host = host


class _Collided(Retry):
    def __init__(self, hosts: list[str]) -> None:
        were = "was" if len(hosts) == 1 else "were"
        super().__init__(f"{plural(len(hosts), 'host')} {were} mapped by another writer "
                         "meanwhile")
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

    One transaction per part of the batch that fits the server's write limits
    (the whole batch, unless Galera limits are stricter), each redone when it loses to a
    concurrent writer (a collision, a deadlock, a Galera certification
    conflict). Raises HostMappingCollision, or Contention, when every retry lost.

    Each part is looked up and inserted under HOST_MAPPING_LOCK, so concurrent
    cellctl runs take turns per part instead of colliding. On Galera the lock
    is one node's only: runs through different nodes collide, and the part is
    redone. A collision can also come from writers that do not take the lock
    (nova-manage, the scheduler's periodic discovery): the part is rolled back
    and redone, as after a deadlock or a certification conflict (galera.retried).
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
        existing = mapped_cells(conn, wanted, key)
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


def mapped_cells(
    conn: Connection, hosts: Sequence[str], key: Callable[[str], str]
) -> dict[str, tuple[int, str]]:
    """key(host) -> (cell id, cell UUID) for those of ``hosts`` that are mapped."""
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm
    from cellctl.tables.api import host_mappings as hm

    cell_ids: dict[str, int] = {}
    for batch in chunks(hosts):
        # No JOIN with cell_mappings: MariaDB then plans the IN list badly (5x slower).
        rows = conn.execute(select(hm.c.host, hm.c.cell_id).where(hm.c.host.in_(batch)))
        cell_ids.update((key(row.host), row.cell_id) for row in rows)
    uuids: dict[int, str] = dict(conn.execute(
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
    """``mapped = 1`` in transactions that fit the server, each redone when it loses to a
    concurrent writer (runs through other Galera nodes mark the same nodes); setting
    the flag twice is harmless."""
    wanted = sorted(set(values))

    def once(part: Sequence[Any]) -> int:
        with cell_db.begin() as conn:
            return _set_mapped(conn, 1, column, part, *where)

    def write(part: Sequence[Any], _last: bool) -> int:
        return retried(lambda: once(part), what="Marking compute nodes mapped")

    return sum(in_parts(wanted, write_limits(cell_db), NODE_ROW_BYTES, write))


def mark_hosts_unmapped(conn: Connection, hosts: Iterable[str] | None = None) -> int:
    """In the caller's transaction, set ``mapped = 0`` on the live compute nodes of
    ``hosts`` (None: on every marked one of the cell), so that discover_hosts finds
    them again; how many rows that touched."""
    from cellctl.tables.cell import compute_nodes as cn

    if hosts is None:
        return int(conn.execute(
            cn.update().where(cn.c.deleted == 0, cn.c.mapped != 0)
            .values(mapped=0, updated_at=utcnow())
        ).rowcount)
    return _set_mapped(conn, 0, cn.c.host, hosts, cn.c.deleted == 0)


def _set_mapped(conn: Connection, flag: int, column: Any, values: Iterable[Any],
                *where: Any) -> int:
    from cellctl.tables.cell import compute_nodes as cn

    now = utcnow()
    return sum(
        int(conn.execute(
            cn.update().where(column.in_(batch), *where).values(mapped=flag, updated_at=now)
        ).rowcount)
        for batch in chunks(sorted(set(values)))
    )
