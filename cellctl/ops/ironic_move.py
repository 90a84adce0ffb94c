"""``ironic move``: hand Ironic nodes from one nova-compute service to another.

What ``nova-manage db ironic_compute_node_move`` does for one node of the
local cell, for every node of a service (or the ``--node`` ones) in every
cell, planned first and written only with ``apply``. Its rules, per node:

- the source service (the ``--from`` host's ``nova-compute``) is forced down;
- the destination service exists in the node's cell (``nova-compute``, not
  deleted), is not forced down and (cellctl's addition) is up by the service
  group driver;
- the node has at most one live instance on the source host
  (``instances.host`` = source, ``instances.node`` = the node);

then ``compute_nodes.host`` and ``service_id`` become the destination's, and
so does the ``host`` of the node's instance. ``host_mappings`` is not
touched (nova-manage does not either).

``rebalance`` picks each node's destination as Nova's hash ring would once
the source is gone: the ring over the cell's up, enabled, not forced-down
Ironic compute services without the source (``cellctl.ironic.ring``).

Cells are read in parallel (a dead one is reported, the others proceed);
each node is moved in its own transaction under IRONIC_NODE_LOCK, which
checks again and updates only a row still on the source: a run killed
half-way leaves every node either moved or not, and a re-run finishes the
rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from cellctl.cells.reach import read_cells
from cellctl.cells.refs import CellRef, select_cells
from cellctl.clock import utcnow
from cellctl.errors import CellctlError
from cellctl.hashring import HashRing
from cellctl.ids import NotAUUID, canonical_uuid, canonical_uuids
from cellctl.ironic.ring import IronicService, judge_services, read_services, ring_members
from cellctl.paging import chunks
from cellctl.result import Column, Result, Table
from cellctl.results import IronicMoveCheck, IronicMoveRow
from cellctl.tables.cell import IRONIC
from cellctl.tables.cell import compute_nodes as cn
from cellctl.tables.cell import instances as inst
from cellctl.tables.cell import services as sv
from cellctl.writes.galera import retried
from cellctl.writes.locks import IRONIC_NODE_LOCK
from cellctl.writes.transactions import write_transaction

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from cellctl.db import Databases

# Exit codes (most urgent first when several apply).
BAD_INPUT = 1  # one line, nothing read or written
REFUSED = 2  # a node fails a check (the others are still moved with --apply)
DEAD_CELL = 4  # a cell could not be read or written: its nodes are not planned or not moved
NOTHING_TO_MOVE = 3  # the source reports none of the nodes asked for

READY, REFUSED_STATUS, MOVED, NOT_MOVED, ALREADY = (
    "ready", "refused", "moved", "not moved", "already moved")

SOURCE_FORCED_DOWN = "source forced down"
REPORTED_BY_SOURCE = "reported by source"
DESTINATION_EXISTS = "destination exists"
DESTINATION_NOT_FORCED_DOWN = "destination not forced down"
DESTINATION_UP = "destination up"
ONE_INSTANCE = "at most one instance"

COLUMNS = [
    Column("node", "Node"),
    Column("cell_name", "Cell Name", none_as="None"),
    Column("source", "From"),
    Column("destination", "To", none_as="None"),
    Column("instance_uuid", "Instance"),
    Column("status", "Status"),
    Column("failed_checks", "Failed Checks"),
]
LEFT_OUT = "Ironic nodes of {cell} are not moved"


@dataclass(frozen=True)
class _Node:
    id: int
    node: str  # hypervisor_hostname: the Ironic node UUID
    host: str  # compute_nodes.host as stored
    instances: tuple[str, ...]  # live instances on (host, node)


@dataclass
class _Cell:
    """What one cell holds for the move."""

    services: list[IronicService]
    nodes: list[_Node] = field(default_factory=list)  # the source's, in id order
    elsewhere: dict[str, str] = field(default_factory=dict)  # --node not on source -> its host


@dataclass
class _Move:
    cell: CellRef
    node: _Node | None  # None: an asked node the source does not report
    node_name: str
    source: IronicService | None
    destination: IronicService | None
    checks: list[IronicMoveCheck]
    status: str

    def row(self, source_host: str) -> IronicMoveRow:
        return {
            "node": self.node_name, "cell_uuid": self.cell.uuid, "cell_name": self.cell.name,
            "source": self.node.host if self.node else source_host,
            "destination": self.destination.record.host if self.destination else None,
            "instance_uuid": self.node.instances[0] if self.node and self.node.instances
            else None,
            "status": self.status, "checks": self.checks,
            "failed_checks": [c["check"] for c in self.checks if not c["passed"]],
        }


def ironic_move(
    dbs: Databases,
    *,
    source: str | None,
    destination: str | None = None,
    rebalance: bool = False,
    nodes: Sequence[str] = (),
    cell: str | None = None,
    apply: bool = False,
) -> Result[None, IronicMoveRow]:
    """Plan (and with ``apply`` make) the move of ``source``'s Ironic nodes.

    To ``destination``, or with ``rebalance`` to each node's owner on the ring
    without the source; all of the source's nodes, or only ``nodes``; in every
    cell, or the one ``cell`` names (name or UUID). Exit 0 plan OK or all
    moved, 1 bad input, 2 a node refused, 3 nothing to move, 4 a cell could not
    be read or written (see the constants).
    """
    result: Result[None, IronicMoveRow] = Result()
    wanted = _valid(dbs.settings.argument, result, source, destination, rebalance, nodes)
    if wanted is None or source is None:
        return result
    with dbs.api.connect() as conn:
        refs = _select(conn, result, cell)
    if refs is None:
        return result
    cells = [ref for ref in refs if not ref.is_cell0]
    hosts = [source] + ([destination] if destination else [])
    found = read_cells(dbs, cells, lambda _c, engine: _read_cell(engine, source, wanted, hosts),
                       result, left_out=LEFT_OUT)
    cells = [ref for ref in cells if ref.uuid in found]
    verdicts = judge_services(dbs, {uuid: held.services for uuid, held in found.items()},
                              result)
    moves = {ref.uuid: _plan(ref, found[ref.uuid], verdicts[ref.uuid], source, destination,
                             wanted) for ref in cells}
    if apply:
        ready = [ref for ref in cells if any(m.status == READY for m in moves[ref.uuid])]
        read_cells(dbs, ready, lambda ref, engine: _apply(engine, moves[ref.uuid]), result,
                   left_out=LEFT_OUT, probe=False)
    rows = [m.row(source) for ref in cells for m in moves[ref.uuid]]
    if not result.unreachable_cells:
        rows += _unknown_nodes(wanted, rows, source, destination)
    result.table = Table(list(COLUMNS), rows)
    _conclude(result, rows, apply)
    return result


def _valid(arg: Callable[[str, str], str], result: Result, source: str | None,
           destination: str | None, rebalance: bool, nodes: Sequence[str]) -> list[str] | None:
    """The asked node UUIDs in Nova's form ([] for all); None (error 1 recorded) if bad.
    ``arg`` names an argument as the caller passes it (``Settings.argument``)."""
    if source is None or not source.strip():
        result.error(f"{arg('source', '--from')} must name the host of the nova-compute "
                     "service to move from", BAD_INPUT)
        return None
    to = arg("destination", "--to")
    if (destination is None) == (not rebalance):
        result.error(f"Give exactly one of {to}{' HOST' if to.startswith('--') else ''} and "
                     f"{arg('rebalance', '--rebalance')}", BAD_INPUT)
        return None
    if destination is not None and not destination.strip():
        result.error(f"{to} must name a host, got {destination!r}", BAD_INPUT)
        return None
    if destination is not None and destination.lower() == source.lower():
        result.error(f"{to}{' ' if to.startswith('--') else ''}{destination} is the source "
                     "itself", BAD_INPUT)
        return None
    try:
        return canonical_uuids(nodes)
    except NotAUUID as exc:
        result.error(f"{arg('nodes', '--node')} must be an Ironic node UUID, got "
                     f"{exc.value!r}", BAD_INPUT)
        return None


def _select(conn: Connection, result: Result, cell: str | None) -> list[CellRef] | None:
    """Every cell, or the one named by ``cell`` (a UUID, else a unique name)."""
    if cell is None or canonical_uuid(cell) is not None:
        return select_cells(conn, result, cell, not_found_code=BAD_INPUT)
    everything = select_cells(conn, result, None, not_found_code=BAD_INPUT) or []
    named = [ref for ref in everything if ref.name == cell]
    if len(named) != 1:
        result.error(f"No cell is named {cell}" if not named else
                     f"{len(named)} cells are named {cell}: give its UUID", BAD_INPUT)
        return None
    return named


# --- reading a cell ---------------------------------------------------------------


def _read_cell(engine: Engine, source: str, wanted: list[str], hosts: list[str]) -> _Cell:
    """The ring candidates and named services, and the source's Ironic nodes with their
    instances (only ``wanted`` ones when given)."""
    held = _Cell(read_services(engine, hosts))
    live = (cn.c.hypervisor_type == IRONIC, cn.c.deleted == 0)
    on_source = func.lower(cn.c.host) == source.lower()
    with engine.connect() as conn:
        rows = []
        if wanted:
            for batch in chunks(wanted):
                for row in conn.execute(select(cn.c.id, cn.c.hypervisor_hostname, cn.c.host)
                                        .where(*live, cn.c.hypervisor_hostname.in_(batch))):
                    if row.host is not None and row.host.lower() == source.lower():
                        rows.append(row)
                    else:
                        held.elsewhere.setdefault(row.hypervisor_hostname, row.host)
        else:
            rows = list(conn.execute(select(cn.c.id, cn.c.hypervisor_hostname, cn.c.host)
                                     .where(*live, on_source)))
        rows.sort(key=lambda r: r.id)
        found: dict[tuple[str, str], list[str]] = {}
        names = sorted({r.hypervisor_hostname for r in rows})
        for batch in chunks(names):
            for row in conn.execute(select(inst.c.host, inst.c.node, inst.c.uuid)
                                    .where(inst.c.deleted == 0, inst.c.node.in_(batch),
                                           func.lower(inst.c.host) == source.lower())
                                    .order_by(inst.c.id)):
                found.setdefault((row.host, row.node), []).append(row.uuid)
    for row in rows:
        if row.hypervisor_hostname in held.elsewhere:
            del held.elsewhere[row.hypervisor_hostname]  # reported by the source too
        held.nodes.append(_Node(row.id, row.hypervisor_hostname, row.host,
                                tuple(found.get((row.host, row.hypervisor_hostname), ()))))
    return held


# --- the plan ---------------------------------------------------------------------


def _named(services: list[IronicService], host: str) -> IronicService | None:
    """The service of ``host``: the exact spelling first, else one differing in case
    (MySQL compares host names without regard to case, so Nova finds it there)."""
    same = [s for s in services if s.record.host.lower() == host.lower()]
    exact = [s for s in same if s.record.host == host]
    return exact[0] if exact else (same[0] if same else None)


def _plan(ref: CellRef, held: _Cell, verdicts: list[bool | None], source: str,
          destination: str | None, wanted: list[str]) -> list[_Move]:
    up = {id(s): verdict for s, verdict in zip(held.services, verdicts, strict=True)}
    source_service = _named(held.services, source)
    target = _named(held.services, destination) if destination else None
    ring: HashRing | None = None
    spelling: dict[str, IronicService] = {}
    members = None
    if destination is None:
        members = ring_members(held.services, verdicts)
        if members is not None:
            members.discard(source.lower())
            ring = HashRing(members)
            for s in held.services:
                if s.record.host.lower() in members:
                    spelling.setdefault(s.record.host.lower(), s)
    moves: list[_Move] = []
    for node in held.nodes:
        if ring is not None:
            owner = ring.owner(node.node)
            target = None if owner is None else spelling[owner]
        checks = _checks(node, source_service, target, None if target is None
                         else up.get(id(target)), destination, members)
        status = READY if all(c["passed"] for c in checks) else REFUSED_STATUS
        moves.append(_Move(ref, node, node.node, source_service, target, checks, status))
    for name, host in held.elsewhere.items():
        if ring is not None:
            owner = ring.owner(name)
            target = None if owner is None else spelling[owner]
        if target is not None and host is not None and host.lower() == target.record.host.lower():
            moves.append(_Move(ref, None, name, source_service, target, [], ALREADY))
        else:
            check = _check(REPORTED_BY_SOURCE, False, f"reported by {host}, not by {source}")
            moves.append(_Move(ref, None, name, source_service, None, [check], REFUSED_STATUS))
    return moves


def _unknown_nodes(wanted: list[str], rows: list[IronicMoveRow], source: str,
                   destination: str | None) -> list[IronicMoveRow]:
    """A refused row for each asked node that no cell read has (none was left out)."""
    seen = {row["node"] for row in rows}
    check = _check(REPORTED_BY_SOURCE, False, "no cell has an Ironic compute node of this UUID")
    return [{"node": node, "cell_uuid": None, "cell_name": None, "source": source,
             "destination": destination, "instance_uuid": None, "status": REFUSED_STATUS,
             "checks": [check], "failed_checks": [REPORTED_BY_SOURCE]}
            for node in wanted if node not in seen]


def _check(name: str, passed: bool, detail: str) -> IronicMoveCheck:
    return {"check": name, "passed": passed, "detail": detail}


def _checks(node: _Node, source: IronicService | None, target: IronicService | None,
            target_up: bool | None, destination: str | None,
            members: set[str] | None) -> list[IronicMoveCheck]:
    if source is None:
        forced = _check(SOURCE_FORCED_DOWN, False, f"no nova-compute service on {node.host}")
    else:
        forced = _check(SOURCE_FORCED_DOWN, source.record.forced_down,
                        "forced down" if source.record.forced_down else
                        "not forced down: run 'openstack compute service set --down' first")
    if target is not None:
        exists = _check(DESTINATION_EXISTS, True, target.record.host)
    elif destination is not None:
        exists = _check(DESTINATION_EXISTS, False,
                        f"no nova-compute service on {destination} in this cell")
    else:
        exists = _check(DESTINATION_EXISTS, False,
                        "liveness unknown: no ring" if members is None
                        else "no up, enabled Ironic compute service left in this cell")
    checks = [forced, exists]
    if target is not None:
        checks.append(_check(DESTINATION_NOT_FORCED_DOWN, not target.record.forced_down,
                             "forced down" if target.record.forced_down else "not forced down"))
        if not target.record.forced_down:  # forced down is down: one failure is enough
            checks.append(_check(DESTINATION_UP, target_up is True,
                                 {True: "up", False: "down", None: "unknown"}[target_up]))
    count = len(node.instances)
    checks.append(_check(ONE_INSTANCE, count <= 1, f"{count} instance{'s' * (count != 1)}"))
    return checks


# --- writing ----------------------------------------------------------------------


def _apply(engine: Engine, moves: list[_Move]) -> None:
    """Each ready node in its own transaction; a failure leaves the rest not moved."""
    for move in moves:
        if move.status != READY:
            continue
        try:
            move.status = retried(partial(_move_one, engine, move),
                                  what=f"Moving Ironic node {move.node_name}")
        except CellctlError:
            for rest in moves:
                if rest.status == READY:
                    rest.status = NOT_MOVED
            raise


def _move_one(engine: Engine, move: _Move) -> str:
    """Check again and move one node with its instance; the new status."""
    node, source, target = move.node, move.source, move.destination
    assert node is not None and source is not None and target is not None
    with write_transaction(engine, lock=IRONIC_NODE_LOCK) as conn:
        forced = dict(conn.execute(select(sv.c.id, sv.c.forced_down).where(
            sv.c.id.in_([source.id, target.id]), sv.c.deleted == 0)).all())
        if not forced.get(source.id) or target.id not in forced or forced[target.id]:
            _recheck_failed(move, "a service changed since the plan")
            return REFUSED_STATUS
        on_node = (inst.c.deleted == 0, inst.c.host == node.host, inst.c.node == node.node)
        count = conn.execute(select(func.count()).where(*on_node)).scalar_one()
        if count > 1:
            _recheck_failed(move, f"{count} instances since the plan")
            return REFUSED_STATUS
        now = utcnow()
        moved = conn.execute(update(cn).where(cn.c.id == node.id, cn.c.host == node.host,
                                              cn.c.deleted == 0)
                             .values(host=target.record.host, service_id=target.id,
                                     updated_at=now)).rowcount
        if moved != 1:
            now_on = conn.execute(select(cn.c.host).where(cn.c.id == node.id,
                                                          cn.c.deleted == 0)).scalar()
            if now_on is not None and now_on.lower() == target.record.host.lower():
                return ALREADY  # another run moved it there meanwhile
            _recheck_failed(move, "its row changed since the plan")
            return NOT_MOVED
        conn.execute(update(inst).where(*on_node).values(host=target.record.host,
                                                         updated_at=now))
    return MOVED


def _recheck_failed(move: _Move, why: str) -> None:
    move.checks.append(_check("unchanged since the plan", False, why))


# --- the outcome ------------------------------------------------------------------


def _conclude(result: Result, rows: list[IronicMoveRow], apply: bool) -> None:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    refused = counts.get(REFUSED_STATUS, 0)
    if apply:
        result.info(f"Moved {counts.get(MOVED, 0)} Ironic node(s)"
                    + (f"; {counts[NOT_MOVED]} not moved" if counts.get(NOT_MOVED) else ""))
    elif counts.get(READY):
        result.info(f"{counts[READY]} Ironic node(s) can move; nothing written "
                    "(run again with --apply)")
    if refused:
        result.error(f"{refused} Ironic node(s) refused: see Failed Checks", REFUSED)
    elif counts.get(NOT_MOVED) and not result.unreachable_cells:
        result.error(f"{counts[NOT_MOVED]} Ironic node(s) changed while moving: run again",
                     REFUSED)
    elif result.unreachable_cells:
        result.code = DEAD_CELL
    elif not any(counts.get(s) for s in (READY, MOVED)):
        result.warn("Nothing to move: the source reports none of the Ironic nodes asked for")
        result.code = NOTHING_TO_MOVE

