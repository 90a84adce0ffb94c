"""The host checks of ``audit``, and their repairs: one merge walk over the hosts.

The API's host mappings and, from every readable cell (not cell0), the hosts
of its live compute nodes and of its live nova-compute services, each sorted
by the database in folded host order (``sorted_rows``), are merged once
(``grouped``), every stream read on a thread of its own. Each host name,
folded (or, where the API database compares names case-sensitively, each exact
spelling of it), is then judged from what the streams say about it:

- a host mapping whose cell has neither a live node nor a live service for
  it: ``host_mapping_without_host`` (the few such hosts are then asked
  whether they still run instances, a page at a time);
- a live node marked ``mapped`` whose host has no mapping at all:
  ``node_mapped_without_host_mapping``;
- live nodes or services in more than one cell: ``host_in_several_cells``.

Nothing is sent back to a database but the findings' own pages. Repairs are
collected during the walk and made a page at a time, each under
``discover_hosts``' lock after asking the cell again.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from cellctl.cells.queries import compute_services, hosts_with_instances, live_nodes
from cellctl.cells.reach import CellUnreachable
from cellctl.cells.refs import CellRef
from cellctl.errors import CellctlError
from cellctl.mappings.hosts import map_hosts
from cellctl.mappings.lookup import PAGE, compares_folded, fold, grouped, sorted_rows
from cellctl.paging import chunks
from cellctl.tables.api import host_mappings as hm
from cellctl.tables.cell import compute_nodes as cn
from cellctl.tables.cell import services as sv
from cellctl.writes.galera import retried
from cellctl.writes.locks import HOST_MAPPING_LOCK
from cellctl.writes.transactions import write_transaction

from .checks import (
    HOST_IN_SEVERAL_CELLS,
    HOST_MAPPING_WITHOUT_HOST,
    NODE_MAPPED_WITHOUT_HOST_MAPPING,
    Audit,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine, Row

HOST_KINDS = (HOST_MAPPING_WITHOUT_HOST, NODE_MAPPED_WITHOUT_HOST_MAPPING, HOST_IN_SEVERAL_CELLS)

# Stream tags: (what, cell id); all tuples of ints, so the merge can compare them.
MAPPINGS, NODES, SERVICES = 0, 1, 2


def check_hosts(audit: Audit) -> None:
    """host_mapping_without_host, node_mapped_without_host_mapping and
    host_in_several_cells, in one walk over the host mappings and every readable
    cell's hosts."""
    found = audit.found
    if not found.wants(*HOST_KINDS):
        return
    marked = func.max(cn.c.mapped).label("mapped")
    node_hosts = live_nodes().with_only_columns(cn.c.host, marked).group_by(cn.c.host)
    service_hosts = compute_services().with_only_columns(sv.c.host).group_by(sv.c.host)
    sources: dict[Any, Any] = {
        (MAPPINGS, 0): sorted_rows(audit.api, select(hm.c.host, hm.c.cell_id, hm.c.id),
                                   hm.c.host)}
    for cell in audit.readable():
        if not cell.is_cell0:
            engine = audit.engines[cell.id]
            sources[(NODES, cell.id)] = sorted_rows(engine, node_hosts, cn.c.host)
            sources[(SERVICES, cell.id)] = sorted_rows(engine, service_hosts, sv.c.host)

    def unreachable(tag: tuple[int, int], exc: CellctlError) -> None:
        if tag[0] == MAPPINGS:
            raise exc  # the API database failing ends the audit
        audit.unreachable.mark(audit.cell_by_id[tag[1]], str(exc))

    # One host is one folded name where the API database compares case-blind (as
    # Nova's look-ups then find it), one exact spelling elsewhere.
    exact = not compares_folded(audit.api, hm.c.host)
    pending = _Pending(audit)
    for _key, rows in grouped(sources, unreachable):
        for same in (_spellings(rows) if exact else [rows]):
            _judge(audit, same, pending)
    pending.flush(everything=True)


def _spellings(rows: list[tuple[tuple[int, int], Any]]) -> list[list[tuple[tuple[int, int], Any]]]:
    """The rows of one folded name, split by exact spelling."""
    by: dict[str, list[tuple[tuple[int, int], Any]]] = defaultdict(list)
    for tag, row in rows:
        by[row.host].append((tag, row))
    return list(by.values())


def _judge(audit: Audit, rows: list[tuple[tuple[int, int], Any]], pending: _Pending) -> None:
    """What the streams say about one (folded) host name."""
    found = audit.found
    mappings = [row for (what, _), row in rows if what == MAPPINGS]
    holders = sorted({cell_id for (what, cell_id), _ in rows if what != MAPPINGS})
    if found.wants(HOST_MAPPING_WITHOUT_HOST):
        for mapping in mappings:
            cell = audit.cell_by_id.get(mapping.cell_id)
            if (cell is not None and mapping.cell_id not in holders and _walked(audit, cell)
                    and audit.mine(cell)):
                pending.add_gone(cell, mapping)
    if not mappings and found.wants(NODE_MAPPED_WITHOUT_HOST_MAPPING):
        for (what, cell_id), row in rows:
            cell = audit.cell_by_id[cell_id] if what == NODES else None
            if cell is not None and (row.mapped or 0) >= 1 and audit.mine(cell):
                found.add(NODE_MAPPED_WITHOUT_HOST_MAPPING, cell, row.host,
                          "compute node marked mapped = 1 but the host has no host mapping "
                          "(discover_hosts never looks at it again)", True)
                pending.add_marked(cell, row.host)
    if len(holders) > 1 and found.wants(HOST_IN_SEVERAL_CELLS):
        cell = audit.only or audit.cell_by_id[holders[0]]
        if cell.id in holders:
            spelled = min(((what, row.host) for (what, cell_id), row in rows
                           if what != MAPPINGS and cell_id == cell.id))[1]
            names = ", ".join(audit.cell_by_id[c].label for c in holders)
            found.add(HOST_IN_SEVERAL_CELLS, cell, spelled,
                      f"live compute nodes or services in {len(holders)} cells: {names}",
                      False)


def _walked(audit: Audit, cell: CellRef) -> bool:
    """Whether the walk read ``cell``'s hosts to the end (so absence there is known)."""
    return cell.id in audit.engines and not cell.is_cell0 and cell not in audit.unreachable


@dataclass
class _Pending:
    """What the walk found that needs the cell asked again, or a repair, a page at a time."""

    audit: Audit
    gone: dict[int, list[Row[Any]]] = field(default_factory=lambda: defaultdict(list))
    marked: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))

    def add_gone(self, cell: CellRef, mapping: Row[Any]) -> None:
        self.gone[cell.id].append(mapping)
        if len(self.gone[cell.id]) >= PAGE:
            self._gone(cell.id)

    def add_marked(self, cell: CellRef, host: str) -> None:
        if not self.audit.fix:
            return
        self.marked[cell.id].append(host)
        if len(self.marked[cell.id]) >= PAGE:
            self._marked(cell.id)

    def flush(self, *, everything: bool) -> None:
        if everything:
            for cell_id in list(self.gone):
                self._gone(cell_id)
            for cell_id in list(self.marked):
                self._marked(cell_id)

    def _gone(self, cell_id: int) -> None:
        rows, self.gone[cell_id] = self.gone[cell_id], []
        cell = self.audit.cell_by_id[cell_id]
        if rows:
            with contextlib.suppress(CellUnreachable):  # recorded in audit.unreachable
                _report_gone(self.audit, cell, rows)

    def _marked(self, cell_id: int) -> None:
        hosts, self.marked[cell_id] = self.marked[cell_id], []
        cell = self.audit.cell_by_id[cell_id]
        if hosts:
            with contextlib.suppress(CellUnreachable):  # recorded in audit.unreachable
                _map_marked_hosts(self.audit, cell, hosts)


def _report_gone(audit: Audit, cell: CellRef, rows: list[Row[Any]]) -> None:
    """Host mappings of ``cell`` whose host has no live node or service there: a finding
    each, fixable unless the host still has live instances (then delete_host refuses)."""
    busy = audit.in_cell(cell, _busy_hosts([row.host for row in rows]))
    for row in rows:
        if fold(row.host) in busy:
            audit.found.add(HOST_MAPPING_WITHOUT_HOST, cell, row.host,
                            "no live compute node or nova-compute service, but live "
                            "instances on the host: not deleted (see delete_host)", False)
        else:
            audit.found.add(HOST_MAPPING_WITHOUT_HOST, cell, row.host,
                            "no live compute node or nova-compute service in the cell", True)
    free = [row for row in rows if fold(row.host) not in busy]
    if audit.fix and free:
        _delete_host_mappings(audit, cell, free)


def _live_hosts_in(hosts: Sequence[str]) -> Callable[[Engine], set[str]]:
    """A cell-database reader: those of ``hosts`` with a live compute node or a live
    nova-compute service there (folded)."""
    wanted = list(hosts)

    def read(db: Engine) -> set[str]:
        with db.connect() as conn:
            found = set(conn.execute(
                live_nodes().with_only_columns(cn.c.host).where(cn.c.host.in_(wanted))
                .union(compute_services().with_only_columns(sv.c.host)
                       .where(sv.c.host.in_(wanted)))).scalars())
        return {fold(host) for host in found}

    return read


def _busy_hosts(hosts: list[str]) -> Callable[[Engine], set[str]]:
    """A cell-database reader: those of ``hosts`` with live instances (delete_host's check)."""
    def read(db: Engine) -> set[str]:
        with db.connect() as conn:
            return {fold(host) for host in conn.execute(hosts_with_instances(hosts)).scalars()}

    return read


def _delete_host_mappings(audit: Audit, cell: CellRef, rows: list[Row[Any]]) -> None:
    """Delete these host mappings, under discover_hosts' lock, after asking the cell again
    (a host that came back, or got an instance, keeps its mapping)."""
    hosts = [row.host for row in rows]
    live_in, busy_in = _live_hosts_in(hosts), _busy_hosts(hosts)

    def in_use(db: Engine) -> set[str]:
        return busy_in(db) | live_in(db)

    def once() -> int:
        with write_transaction(audit.api, lock=HOST_MAPPING_LOCK) as conn:
            used = audit.in_cell(cell, in_use)
            ids = [row.id for row in rows if fold(row.host) not in used]
            return sum(int(conn.execute(
                delete(hm).where(hm.c.id.in_(list(part)), hm.c.cell_id == cell.id)).rowcount)
                for part in chunks(ids, PAGE))

    removed = retried(once, what="Deleting host mappings the audit found")
    audit.found.repaired(HOST_MAPPING_WITHOUT_HOST, removed, len(rows) - removed)


def _map_marked_hosts(audit: Audit, cell: CellRef, hosts: list[str]) -> None:
    """Map the hosts to the cell with discover_hosts' own batch (map_hosts), which looks
    for their mappings again under its lock: a host someone mapped meanwhile is kept."""
    def still_marked(db: Engine) -> list[str]:
        with db.connect() as conn:
            return list(conn.execute(
                live_nodes().with_only_columns(cn.c.host)
                .where(cn.c.host.in_(hosts), cn.c.mapped >= 1).distinct()).scalars())

    current = audit.in_cell(cell, still_marked)
    outcome = map_hosts(audit.api, cell, current)
    audit.found.repaired(NODE_MAPPED_WITHOUT_HOST_MAPPING, len(outcome.created),
                         len(hosts) - len(outcome.created))
