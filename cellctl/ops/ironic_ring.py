"""``ironic ring``: which nova-compute service owns which bare-metal node, and what moves.

Nova's Ironic driver spreads the nodes without an instance over the live
Ironic compute services of a cell with a consistent hash ring
(``cellctl.hashring``); a node with an instance belongs to the host of that
instance and never moves. ``compute_nodes`` shows who reports each node now
(``host`` of its live rows). This compares the two, per node:

- ``in place``: one reporter, and it is the owner;
- ``moving``: a live reporter that is not the owner (it hands the node over at
  the owner's next resource update);
- ``orphaned``: every reporter is down (nobody manages the node until the
  others rebalance, or ever, for a node with an instance);
- ``duplicated``: two or more reporters, at least one of them live;
- ``unknown``: the service group backend could not be asked.

``orphaned`` is decided first: a node nobody manages needs the operator first,
whatever its rows.

The ring members of a cell are Nova's (``service_get_all_computes_by_hv_type``
then ``service_is_up``): ``nova-compute`` services that are not deleted, not
disabled, up by the configured service group driver and not forced down, whose
host has an ironic ``compute_nodes`` row (deleted or not: Nova's join does not
filter ``compute_nodes.deleted``), host names lower-cased. This is the ring
every live member agrees on; a service builds its ring with itself in it, so
a service that is down or has no node row yet has a view of its own.

Cells are read in parallel, nodes in keyset pages by primary key, with one
query for the page's instances; memory holds one page, the duplicated nodes
and the output rows (with ``--summary``, or a what-if without ``--all``, only
their counts). Nodes are listed in the order their rows were created.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from cellctl.cells.reach import read_cells
from cellctl.cells.refs import CellRef, select_cells
from cellctl.db import Databases
from cellctl.hashring import HashRing
from cellctl.ironic.ring import IronicService, judge_services, read_services, ring_members
from cellctl.liveness import host_state
from cellctl.paging import chunks
from cellctl.result import Column, Result, Table
from cellctl.results import IronicNodeRow, IronicRingRow, IronicRingServiceRow
from cellctl.tables.cell import IRONIC
from cellctl.tables.cell import compute_nodes as cn
from cellctl.tables.cell import instances as inst

# Exit codes of ironic ring: 0 listed, BAD_INPUT bad input or a cell not found.
BAD_INPUT = 1

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.engine import Connection, Engine

IN_PLACE, MOVING, ORPHANED, DUPLICATED, UNKNOWN = (
    "in place", "moving", "orphaned", "duplicated", "unknown")
STATES = (IN_PLACE, MOVING, ORPHANED, DUPLICATED, UNKNOWN)
NO_SERVICE = "no service"  # summary State of a host that reports or owns nodes (by their
# instances) but has no live Ironic compute service
NEW_SERVICE = "new"  # summary State of a --with host that is no service yet

BATCH = 20_000  # compute_nodes rows per keyset page (and nodes per instances query)
LEFT_OUT = "Ironic nodes of {cell} are not listed"

NODE_COLUMNS = [
    Column("node", "Node"),
    Column("cell_name", "Cell Name", none_as="None"),
    Column("reported_by", "Reported By"),
    Column("owner", "Owner", none_as="None"),
    Column("state", "State"),
]
OWNER_AFTER_COLUMN = Column("owner_after", "Owner After", none_as="None")
SUMMARY_COLUMNS = [
    Column("host", "Host"),
    Column("cell_name", "Cell Name", none_as="None"),
    Column("state", "State"),
    Column("nodes_reported", "Nodes Reported"),
    Column("nodes_owned", "Nodes Owned"),
]
OWNED_AFTER_COLUMN = Column("nodes_owned_after", "Nodes Owned After")


@dataclass
class _Ring:
    """One cell's view: who is up, the ring now and (what-if) after."""

    services: list[IronicService]
    up: dict[str, bool | None]  # service host -> judged liveness
    now: HashRing | None  # None: liveness unknown (the backend could not be asked)
    after: HashRing | None
    spelling: dict[str, str]  # lower-cased host -> as its service writes it
    new_hosts: list[str]  # --with hosts that are no service of the cell yet

    def canonical(self, host: str) -> str:
        """``host`` as its service writes it (MySQL compares hosts case-insensitively)."""
        return host if host in self.up else self.spelling.get(host.lower(), host)

    def live(self, host: str) -> bool | None:
        """Is ``host``'s service up? False when it has no live service."""
        return self.up.get(self.canonical(host), False)

    def owner(self, ring: HashRing | None, node: str) -> str | None:
        if ring is None:
            return UNKNOWN
        member = ring.owner(node)
        return None if member is None else self.spelling.get(member, member)


@dataclass(frozen=True)
class _Filters:
    host: str | None  # lower-cased
    state: str | None
    what_if: bool
    moved_only: bool  # a what-if without --all
    summary: bool


@dataclass
class _CellOutcome:
    rows: list[IronicRingRow] = field(default_factory=list)
    reported: Counter[str] = field(default_factory=Counter)
    owned: Counter[str] = field(default_factory=Counter)
    owned_after: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Instance:
    uuid: str
    host: str | None


def ironic_ring(
    dbs: Databases,
    *,
    cell_uuid: str | None = None,
    host: str | None = None,
    state: str | None = None,
    summary: bool = False,
    without: Sequence[str] = (),
    joining: Sequence[str] = (),
    show_all: bool = False,
) -> Result[None, IronicRingRow]:
    """Every Ironic node of every cell (or one): reporters, owner, state; or per service.

    ``host`` keeps the nodes it reports or owns, ``state`` those in that state.
    ``without`` / ``joining`` recompute the rings as if those services went
    down or joined, adding each node's owner after; only the nodes that would
    move are listed unless ``show_all``, and ``summary`` counts the nodes owned
    after. Exit 0; 1 bad input. A cell whose database cannot be read is
    reported unreachable and its nodes are absent.
    """
    result: Result[None, IronicRingRow] = Result()
    named = _Naming(dbs.settings.from_cli)
    wanted_state = _parse_state(state, result, named)
    if result.code or not _valid_hosts(result, named, host=host, without=without,
                                       joining=joining):
        return result
    with dbs.api.connect() as conn:
        refs = select_cells(conn, result, cell_uuid, not_found_code=BAD_INPUT)
    if refs is None:
        return result
    cells = [ref for ref in refs if not ref.is_cell0]  # cell0 has no compute services

    services = read_cells(dbs, cells, lambda _cell, engine: read_services(engine, joining),
                          result, left_out=LEFT_OUT)
    cells = [cell for cell in cells if cell.uuid in services]
    verdicts = judge_services(dbs, services, result)
    rings = _plan_rings(cells, services, verdicts, named, without=without, joining=joining,
                        result=result)
    if rings is None:
        return result
    what_if = bool(without or joining)
    filters = _Filters(host.lower() if host else None, wanted_state, what_if,
                       moved_only=what_if and not show_all, summary=summary)
    outcomes = read_cells(
        dbs, cells, lambda cell, engine: _read_nodes(cell, engine, rings[cell.uuid], filters),
        result, left_out=LEFT_OUT, probe=False)
    cells = [cell for cell in cells if cell.uuid in outcomes]
    if summary:
        result.table = _summary(cells, rings, outcomes, filters)
    else:
        columns = [*NODE_COLUMNS, OWNER_AFTER_COLUMN] if what_if else list(NODE_COLUMNS)
        result.table = Table(columns, [row for cell in cells for row in outcomes[cell.uuid].rows])
    return result


@dataclass(frozen=True)
class _Naming:
    """Arguments in messages as the caller passes them: ``--with cmp1`` on the command
    line, ``joining=['cmp1']`` from Python."""

    from_cli: bool

    def arg(self, name: str, flag: str) -> str:
        return flag if self.from_cli else f"{name}="

    def value(self, name: str, flag: str, value: str) -> str:
        """One value of a repeatable argument."""
        return f"{flag} {value}" if self.from_cli else f"{name}={[value]!r}"


def _parse_state(value: str | None, result: Result, named: _Naming) -> str | None:
    """``in place``, ``in_place`` and ``In-Place`` are one state."""
    if value is None:
        return None
    spelled = " ".join(value.replace("_", " ").replace("-", " ").lower().split())
    if spelled not in STATES:
        result.error(f"{named.arg('state', '--state')} must be one of: {', '.join(STATES)} "
                     f"(got {value!r})", BAD_INPUT)
        return None
    return spelled


def _valid_hosts(result: Result, named: _Naming, *, host: str | None, without: Sequence[str],
                 joining: Sequence[str]) -> bool:
    for flag, values in ((named.arg("host", "--host"), [] if host is None else [host]),
                         (named.arg("without", "--without"), without),
                         (named.arg("joining", "--with"), joining)):
        for value in values:
            if not value.strip():
                result.error(f"{flag} must name a host, got {value!r}", BAD_INPUT)
                return False
    both = {h.lower() for h in without} & {h.lower() for h in joining}
    if both:
        result.error(f"A host cannot both leave and join: {', '.join(sorted(both))}", BAD_INPUT)
        return False
    return True


# --- reading cells --------------------------------------------------------------


# --- the rings ------------------------------------------------------------------


def _plan_rings(cells: list[CellRef], services: dict[str, list[IronicService]],
                verdicts: dict[str, list[bool | None]], named: _Naming, *,
                without: Sequence[str],
                joining: Sequence[str], result: Result) -> dict[str, _Ring] | None:
    """Each cell's ring now and after the what-if; None (error 1 recorded) when a
    --with/--without host cannot be placed."""
    leaving = {h.lower(): h for h in without}
    joins = {h.lower(): h for h in joining}
    where: dict[str, set[str]] = {name: set() for name in {*leaving, *joins}}
    for cell in cells:
        for service in services[cell.uuid]:
            if service.record.host.lower() in where:
                where[service.record.host.lower()].add(cell.uuid)
    for name, shown in leaving.items():
        if not where[name]:
            message = (f"{named.value('without', '--without', shown)}: no Ironic compute "
                       f"service on host {shown}")
            if not result.unreachable_cells:
                result.error(message, BAD_INPUT)
                return None
            result.warn(message + " in the cells that could be read")
    for name, shown in joins.items():
        if not where[name] and cells:
            if len(cells) != 1:
                result.error(f"{named.value('joining', '--with', shown)}: no nova-compute "
                             f"service on host {shown} in any cell; name the cell it joins with "
                             f"{named.arg('cell_uuid', '--cell_uuid')}", BAD_INPUT)
                return None
            where[name].add(cells[0].uuid)

    rings: dict[str, _Ring] = {}
    for cell in cells:
        uuid = cell.uuid
        listed, judged = services[uuid], verdicts[uuid]
        up = {s.record.host: verdict for s, verdict in zip(listed, judged, strict=True)}
        spelling: dict[str, str] = {}
        for s in listed:
            spelling.setdefault(s.record.host.lower(), s.record.host)
        found = ring_members(listed, judged)
        unknown = found is None
        members = found or set()
        gone = {name for name in leaving if uuid in where[name]}
        joined = {name for name in joins if uuid in where[name]}
        after_members = (members - gone) | joined
        now = None if unknown else HashRing(members)
        after = now if after_members == members else (None if unknown
                                                      else HashRing(after_members))
        new_hosts = [joins[name] for name in sorted(joined) if name not in spelling]
        for name in new_hosts:
            spelling[name.lower()] = name
        rings[uuid] = _Ring(listed, up, now, after, spelling, new_hosts)
    return rings


# --- the nodes ------------------------------------------------------------------


def _read_nodes(cell: CellRef, engine: Engine, ring: _Ring, filters: _Filters) -> _CellOutcome:
    outcome = _CellOutcome()
    with engine.connect() as conn:
        # One snapshot for every page (InnoDB's and SQLite's reads are already).
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        if filters.summary and filters.state is None:
            _count_nodes(conn, ring, outcome)  # no node's state is needed: counts only
            return outcome
        for batch in node_batches(conn, BATCH):
            instances = _live_instances(conn, [node for node, _ in batch])
            for node, reporters in batch:
                _place(cell, ring, node, reporters, instances.get(node), filters, outcome)
    return outcome


def _place(ref: CellRef, ring: _Ring, node: str, reporters: list[str],
           instance: _Instance | None, filters: _Filters, outcome: _CellOutcome) -> None:
    """One node's owner(s) and state, counted and (when it passes the filters) listed."""
    reporters = [ring.canonical(r) for r in reporters]
    if instance is not None:  # a node with an instance never moves
        owner = after = None if instance.host is None else ring.canonical(instance.host)
    else:
        owner = ring.owner(ring.now, node)
        after = owner if ring.after is ring.now else ring.owner(ring.after, node)
    state = node_state(reporters, owner, ring.live)
    if filters.state is not None and state != filters.state:
        return
    outcome.reported.update(reporters)
    if owner is not None and owner != UNKNOWN:
        outcome.owned[owner] += 1
    if after is not None and after != UNKNOWN:
        outcome.owned_after[after] += 1
    if filters.summary or (filters.moved_only and not _moves(owner, after)):
        return
    if filters.host is not None and filters.host not in {
            h.lower() for h in (*reporters, owner, after) if h is not None}:
        return
    row: IronicNodeRow = {
        "node": node, "cell_uuid": ref.uuid, "cell_name": ref.name, "reported_by": reporters,
        "owner": owner, "state": state,
        "instance_uuid": None if instance is None else instance.uuid,
    }
    if filters.what_if:
        row["owner_after"] = after
    outcome.rows.append(row)


def _count_nodes(conn: Connection, ring: _Ring, outcome: _CellOutcome) -> None:
    """What ``_place`` counts for every node, without a state: the reports per host
    (every live row), the owner now and after of every node (once, however many rows
    report it). The same pages and instance look-ups as ``node_batches``, without the
    per-node bookkeeping a listing needs."""
    node = cn.c.hypervisor_hostname
    live = (cn.c.hypervisor_type == IRONIC, cn.c.deleted == 0, node.is_not(None))
    twice = set(conn.execute(select(node).where(*live).group_by(node)
                             .having(func.count() > 1)).scalars())
    counted: set[str] = set()  # the nodes of ``twice`` already counted
    reported: Counter[str] = Counter()  # as the rows spell the hosts
    owned: Counter[str | None] = Counter()  # ring members (lower-cased)
    owned_after: Counter[str | None] = Counter()
    now, after = ring.now, ring.after
    last = None
    for page in _live_pages(conn, BATCH):
        first, last = last, page[-1][0]
        reported.update([row[2] for row in page])
        nodes = [row[1] for row in page]
        if twice:  # a node reported twice is counted at its first row (exact spelling)
            nodes = [n for n in nodes if n not in twice or _first(n, counted)]
        if conn.dialect.name == "postgresql":
            instances = _live_instances(conn, nodes)
        else:  # the page's nodes as a subquery: no 20,000 parameters to send and parse
            on_page = _page_instances(conn, first, last)
            instances = {n: on_page[n] for n in nodes if n in on_page} if on_page else {}
        free = [n for n in nodes if n not in instances] if instances else nodes
        for found in instances.values():  # never moves: its instance's host owns it
            if found.host is not None:
                host = ring.canonical(found.host)
                outcome.owned[host] += 1
                outcome.owned_after[host] += 1
        if now is not None:  # None: liveness unknown, so are the owners
            owners = [now.owner(n) for n in free]
            owned.update(owners)
            owned_after.update(owners if after is now else
                               [after.owner(n) for n in free] if after is not None else ())
    for host, count in reported.items():
        outcome.reported[ring.canonical(host)] += count
    for counts, into in ((owned, outcome.owned), (owned_after, outcome.owned_after)):
        for member, count in counts.items():
            if member is not None:
                into[ring.spelling.get(member, member)] += count


def _first(node: str, counted: set[str]) -> bool:
    """Is this the first time ``node`` is counted? (It is now.)"""
    if node in counted:
        return False
    counted.add(node)
    return True


def node_state(reporters: Sequence[str], owner: str | None,
               live: Callable[[str], bool | None]) -> str:
    """The state of a node reported by ``reporters`` (at least one) and owned by ``owner``.

    ``live(host)`` is the reporter's liveness (None: unknown).
    """
    alive = [live(host) for host in reporters]
    if all(verdict is False for verdict in alive):
        return ORPHANED
    if any(verdict is None for verdict in alive):
        return UNKNOWN
    if len(reporters) > 1:
        return DUPLICATED
    if owner == UNKNOWN:
        return UNKNOWN
    if owner is not None and reporters[0].lower() == owner.lower():
        return IN_PLACE
    return MOVING


def _moves(owner: str | None, after: str | None) -> bool:
    return (owner or "").lower() != (after or "").lower()


def node_batches(conn: Connection, size: int = BATCH) -> Iterator[list[tuple[str, list[str]]]]:
    """The cell's Ironic nodes with their reporters, one keyset page of rows at a time.

    Pages go by primary key (a range scan: no table has an index on
    ``hypervisor_hostname``, so pages by node would sort the whole table each
    time). A node reported twice or more is found first, with its reporters,
    in one grouping query; it is yielded where its first row comes and skipped
    at the others. Memory: one page, and the duplicated nodes.
    """
    node = cn.c.hypervisor_hostname
    live = (cn.c.hypervisor_type == IRONIC, cn.c.deleted == 0, node.is_not(None))
    # Two statements, not one with a subquery: on a table without statistics
    # PostgreSQL plans "IN (SELECT .. GROUP BY ..)" as a nested loop, N^2.
    twice = list(conn.execute(select(node).where(*live).group_by(node)
                              .having(func.count() > 1)).scalars())
    duplicated: dict[str, list[str] | None] = {}
    for chunk in chunks(twice, size):
        exact = set(chunk)  # MySQL's IN also matches names differing only in case
        for twin in conn.execute(select(node, cn.c.host).where(*live, node.in_(chunk))
                                 .order_by(cn.c.id)):
            if twin.hypervisor_hostname in exact:
                reporters = duplicated.setdefault(twin.hypervisor_hostname, [])
                assert reporters is not None
                reporters.append(twin.host)
    for page in _live_pages(conn, size):
        batch: dict[str, list[str]] = {}
        for row in page:
            name = row.hypervisor_hostname
            if name in duplicated:
                reporters = duplicated[name]
                if reporters is not None:  # its first row: every reporter at once
                    batch[name] = reporters
                    duplicated[name] = None
            else:
                batch.setdefault(name, []).append(row.host)
        yield list(batch.items())


def _live_pages(conn: Connection, size: int) -> Iterator[Sequence[Any]]:
    """The cell's live Ironic ``compute_nodes`` rows as (id, node, host), a keyset page by
    primary key at a time (a range scan: no index on ``hypervisor_hostname``)."""
    node = cn.c.hypervisor_hostname
    live = (cn.c.hypervisor_type == IRONIC, cn.c.deleted == 0, node.is_not(None))
    page_query = select(cn.c.id, node, cn.c.host).where(*live).order_by(cn.c.id).limit(size)
    last = None
    while True:
        query = page_query if last is None else page_query.where(cn.c.id > last)
        page = conn.execute(query).all()
        if page:
            yield page
        if len(page) < size:
            return
        last = page[-1][0]


def _page_instances(conn: Connection, after: int | None, last: int) -> dict[str, _Instance]:
    """``_live_instances`` of the nodes of the live Ironic rows with ``after < id <= last``,
    the node list given as a subquery of that primary-key range (MariaDB and SQLite
    materialize it into a hashed table once)."""
    node = cn.c.hypervisor_hostname
    page = select(node).where(cn.c.hypervisor_type == IRONIC, cn.c.deleted == 0,
                              node.is_not(None), cn.c.id <= last)
    if after is not None:
        page = page.where(cn.c.id > after)
    found: dict[str, _Instance] = {}
    for row in conn.execute(select(inst.c.node, inst.c.uuid, inst.c.host)
                            .where(inst.c.deleted == 0, inst.c.node.in_(page))
                            .order_by(inst.c.id)):
        found.setdefault(row.node, _Instance(row.uuid, row.host))
    return found


def _live_instances(conn: Connection, nodes: list[str]) -> dict[str, _Instance]:
    """The live instance on each of ``nodes`` that has one (the oldest, if several)."""
    found: dict[str, _Instance] = {}
    if not nodes:
        return found
    on_nodes: ColumnElement[bool]
    if conn.dialect.name == "postgresql":
        # One array parameter rather than 20,000: a third of the time.

        on_nodes = inst.c.node == any_(bindparam("nodes", nodes, type_=ARRAY(String)))
    else:
        on_nodes = inst.c.node.in_(nodes)
    rows = conn.execute(select(inst.c.node, inst.c.uuid, inst.c.host)
                        .where(inst.c.deleted == 0, on_nodes)
                        .order_by(inst.c.id))
    for row in rows:
        found.setdefault(row.node, _Instance(row.uuid, row.host))
    return found


# --- the summary ----------------------------------------------------------------


def _summary(cells: list[CellRef], rings: dict[str, _Ring], outcomes: dict[str, _CellOutcome],
             filters: _Filters) -> Table[IronicRingRow]:
    """One row per service of each cell's rings (and per host that reports nodes)."""
    columns = [*SUMMARY_COLUMNS, OWNED_AFTER_COLUMN] if filters.what_if else list(
        SUMMARY_COLUMNS)
    rows: list[IronicRingRow] = []
    for cell in cells:
        ring, outcome = rings[cell.uuid], outcomes[cell.uuid]
        states: dict[str, str] = {}
        for s in ring.services:
            states[s.record.host] = host_state(disabled=s.record.disabled,
                                               forced_down=s.record.forced_down,
                                               up=ring.up[s.record.host])
        for host in ring.new_hosts:
            states.setdefault(host, NEW_SERVICE)
        for host in (*outcome.reported, *outcome.owned, *outcome.owned_after):
            states.setdefault(host, NO_SERVICE)  # its instances' nodes are its own
        for host in sorted(states):
            if filters.host is not None and host.lower() != filters.host:
                continue
            row: IronicRingServiceRow = {
                "host": host, "cell_uuid": cell.uuid, "cell_name": cell.name,
                "state": states[host], "nodes_reported": outcome.reported[host],
                "nodes_owned": outcome.owned[host],
            }
            if filters.what_if:
                row["nodes_owned_after"] = outcome.owned_after[host]
            rows.append(row)
    return Table(columns, rows)
