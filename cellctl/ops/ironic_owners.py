"""``ironic owners``: every Ironic node and the services that will manage it, each by
its own settings, as Nova 34's Ironic driver decides (``cellctl.ironic.ownership``).

Inputs: Ironic's node list; each compute service's own nova.conf
(``--service-config HOST=FILE``, ``--service-config-dir``), whose
``[ironic]`` group reads that service's own listing as its driver would
(services with equal connection settings share one fetch; a file that says
nothing of how to reach Ironic uses cellctl's own ``[ironic]`` group, else
the first service file's that does, as does the full listing); and the
cells' ``services``, ``compute_nodes`` and ``instances``. Each configured
service's view is computed whether it runs or
not (``would_manage``); the services the service group says are up, disabled
or not, are the node's ``managed_by``. The flags say what to act on:

- ``unmanaged``: no running service will manage the node;
- ``double-managed``: two or more will (their reports flip its row);
- ``moving``: one will, and its ``compute_nodes`` row is another host's (or
  there is none yet): it moves at that service's next resource update;
- ``instance host down``: the node's instance lives on a host whose service
  is down, forced down or gone: nobody manages the node;
- ``unserved``: no configured service's filter (conductor group, shard)
  lists the node;
- ``unknown``: Ironic or the service group could not be asked.

Without an ``[ironic]`` group that reaches Ironic, the nodes are the
``compute_nodes`` rows (a node no service reported yet is missing), conductor
groups and shards are unknown, and the result says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, select

from cellctl.cells.probes import DEFAULT_TIMEOUT
from cellctl.cells.reach import read_cells
from cellctl.cells.refs import CellRef, select_cells
from cellctl.clock import utcnow
from cellctl.db import Databases
from cellctl.errors import ConfigError
from cellctl.hashring import HashRing
from cellctl.ironic import config
from cellctl.ironic.nodes import (
    CONDUCTOR_GROUP_VERSION,
    SHARD_VERSION,
    Filter,
    IronicClient,
    IronicUnreachable,
    Node,
)
from cellctl.ironic.ownership import (
    InvalidPeerList,
    Peer,
    Shares,
    contradictions,
    ring_members,
)
from cellctl.liveness import BackendUnreachable, ServiceRecord, host_state, judge, service_group
from cellctl.paging import chunks, collector_paused
from cellctl.result import Column, Result, Table
from cellctl.results import IronicOwnerNodeRow, IronicOwnerServiceRow, IronicOwnersRow
from cellctl.tables.cell import COMPUTE_BINARY, IRONIC
from cellctl.tables.cell import compute_nodes as cn
from cellctl.tables.cell import instances as inst
from cellctl.tables.cell import services as sv

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from cellctl.ironic.config import IronicSettings

UNMANAGED, DOUBLE, MOVING, INSTANCE_HOST_DOWN, UNSERVED, UNKNOWN = (
    "unmanaged", "double-managed", "moving", "instance host down", "unserved", "unknown")
CHUNK = 5_000
# Exit codes of ironic owners: 0 listed, BAD_INPUT a service file that cannot be read
# or a cell not found.
BAD_INPUT = 1
LEFT_OUT = "the services and nodes of {cell} are not counted"
NOT_CONFIGURED = ("No [ironic] group says how to reach Ironic (auth_type or endpoint_override) "
                  "in cellctl's configuration or a service's: the nodes are the compute_nodes "
                  "rows (nodes no service reported yet are missing; conductor groups and "
                  "shards unknown)")

NODE_COLUMNS = [
    Column("node", "Node"),
    Column("conductor_group", "Conductor Group", none_as="-"),
    Column("shard", "Shard", none_as="-"),
    Column("instance_uuid", "Instance", none_as="-"),
    Column("reported_by", "Reported By"),
    Column("managed_by", "Managed By"),
    Column("flags", "Flags"),
]
SERVICE_COLUMNS = [
    Column("host", "Host"),
    Column("cell_name", "Cell Name", none_as="None"),
    Column("state", "State"),
    Column("conductor_group", "Conductor Group", none_as="-"),
    Column("shard", "Shard", none_as="-"),
    Column("peer_list", "Peer List"),
    Column("nodes_listed", "Nodes Listed", none_as="unknown"),
    Column("nodes_managed", "Nodes Managed", none_as="unknown"),
    Column("problems", "Problems"),
]


@dataclass
class _Service:
    host: str
    disabled: bool
    forced_down: bool
    has_ironic_node: bool
    record: Any  # liveness.ServiceRecord
    up: bool | None = None


@dataclass
class _Cell:
    services: list[_Service]
    rows: dict[str, list[str]]  # node UUID -> hosts of its live ironic compute_nodes rows
    on_nodes: dict[str, tuple[str, str | None]]  # node -> (instance uuid, host), db-only view
    own: dict[str, set[str]] = field(default_factory=dict)  # host -> its live instances
    hosts_of: dict[str, str | None] = field(default_factory=dict)  # instance -> host


@dataclass
class _View:
    host: str
    cell: CellRef | None
    settings: IronicSettings
    listed: int | None = None
    managed: list[str] | None = None  # None: unknown, or not kept (the summary)
    nodes_managed: int | None = None  # None: unknown
    problems: list[str] = field(default_factory=list)
    api: tuple[bool, bool] = (True, True)  # Ironic speaks conductor groups, shards
    listing: list[Node] | None = None  # its own listing; None: not read, or not kept
    fetch: tuple[Any, Filter] | None = None  # (connection key, filter) it was read with
    share: Shares | None = None  # its listing split by its ring; None: no view computed

    @property
    def wanted(self) -> Filter:
        return Filter.of(self.settings, groups=self.api[0], shards=self.api[1])


def ironic_owners(dbs: Databases, *, service_configs: Sequence[str] = (),
                  service_config_dir: str | None = None, cell_uuid: str | None = None,
                  problems_only: bool = False, services: bool = False
                  ) -> Result[None, IronicOwnersRow]:
    """Each node with the services that will manage it, and what to act on; or
    (``services``) each configured service's settings, listing and share.

    Exit 0; 1 bad input (a service file that cannot be read).
    """
    result: Result[None, IronicOwnersRow] = Result()
    try:
        files = config.service_files(service_configs, service_config_dir)
        settings = config.load_services(files)
        own = config.load(dbs.settings.config_files, dbs.settings.config_dirs)
    except ConfigError as exc:
        result.error(str(exc), BAD_INPUT)
        return result
    if not settings:
        result.warn("No service settings given (--service-config HOST=FILE or "
                    "--service-config-dir): no service's view is computed")
    with dbs.api.connect() as conn:
        refs = select_cells(conn, result, cell_uuid, not_found_code=BAD_INPUT)
    if refs is None:
        return result
    cells = [ref for ref in refs if not ref.is_cell0]
    read = read_cells(dbs, cells, _read_cell, result, left_out=LEFT_OUT)
    cells = [cell for cell in cells if cell.uuid in read]
    _judge(dbs, read, result)

    views = _place_services(settings, cells, read, result)
    with collector_paused():  # the listings hold a few objects per node, and no cycle
        _owners(dbs, cells, read, views, settings, own, result,
                problems_only=problems_only, services=services)
    return result


def _owners(dbs: Databases, cells: list[CellRef], read: dict[str, _Cell],
            views: dict[str, _View], settings: dict[str, IronicSettings],
            own: IronicSettings, result: Result[None, IronicOwnersRow], *,
            problems_only: bool, services: bool) -> None:
    """Every listing read once and split by every ring that needs it as it is read; the
    node listing keeps the nodes, the summary (``services``) keeps only counts."""
    keep = not services
    reach = own if own.reaches_ironic else next(
        (s for s in settings.values() if s.reaches_ironic), None)
    fetched: list[Node] | None = None
    if reach is None:
        result.info(NOT_CONFIGURED)
        every = _db_nodes(read)
        plain = [view for view in views.values() if view.wanted == Filter()]
        for view in views.values():
            if view.wanted != Filter():  # only a plain service's view can be computed
                view.problems.append("conductor group or shard set and Ironic not read")
        _read_listing(iter(every), plain, (None, Filter()), read, result, {})
    else:
        fetched = _ironic_nodes(reach, views, read, result, keep=keep)
        every = _db_nodes(read) if fetched is None else fetched
    unknown = reach is not None and fetched is None
    instance_uuids = {n.instance_uuid for n in every if n.instance_uuid} if keep else set()
    more = read_cells(dbs, cells, lambda cell, engine: _read_instances(
        engine, [v.host for v in views.values() if v.cell == cell], instance_uuids),
        result, left_out=LEFT_OUT, probe=False)
    for uuid, (own_instances, hosts_of) in more.items():
        read[uuid].own, read[uuid].hosts_of = own_instances, hosts_of
    for view in views.values():
        if view.share is not None and view.cell is not None:
            mine = read[view.cell.uuid].own.get(view.host, set())
            view.nodes_managed = view.share.count(view.host, mine)
            if keep:
                view.managed = view.share.of(view.host, mine)
    for host, found in contradictions(settings).items():
        views[host].problems.extend(found)

    if services:
        result.table = Table(SERVICE_COLUMNS, [_service_row(v, read) for v in views.values()])
    else:
        rows = _node_rows(every, views, read, unknown=unknown)
        if problems_only:
            rows = [row for row in rows if row["flags"]]
        result.table = Table(NODE_COLUMNS, list[IronicOwnersRow](rows))


# --- reading the cells ------------------------------------------------------------


def _read_cell(_cell: CellRef, engine: Engine) -> _Cell:
    ironic_node = exists().where(cn.c.host == sv.c.host, cn.c.hypervisor_type == IRONIC)
    query = (select(*ServiceRecord.columns(sv), ironic_node.label("has_ironic_node"))
             .where(sv.c.deleted == 0, sv.c.binary == COMPUTE_BINARY).order_by(sv.c.id))
    live = (cn.c.hypervisor_type == IRONIC, cn.c.deleted == 0,
            cn.c.hypervisor_hostname.is_not(None))
    with engine.connect() as conn:
        found = [_Service(r.host, bool(r.disabled), bool(r.forced_down),
                          bool(r.has_ironic_node), ServiceRecord.of(r))
                 for r in conn.execute(query) if r.host is not None]
        rows: dict[str, list[str]] = {}
        for row in conn.execute(select(cn.c.hypervisor_hostname, cn.c.host).where(*live)
                                .order_by(cn.c.id)):
            rows.setdefault(row.hypervisor_hostname, []).append(row.host)
        on_nodes: dict[str, tuple[str, str | None]] = {}
        query_on = (select(inst.c.node, inst.c.uuid, inst.c.host)
                    .join(cn, inst.c.node == cn.c.hypervisor_hostname)
                    .where(inst.c.deleted == 0, *live).order_by(inst.c.id))
        for on in conn.execute(query_on):
            on_nodes.setdefault(on.node, (on.uuid, on.host))
    return _Cell(found, rows, on_nodes)


def _read_instances(engine: Engine, hosts: list[str], uuids: set[str]
                    ) -> tuple[dict[str, set[str]], dict[str, str | None]]:
    """Each host's live instances (Nova's ``get_uuids_by_host``: the database compares
    the host), and the host of each of ``uuids`` that lives in this cell."""
    own: dict[str, set[str]] = {}
    hosts_of: dict[str, str | None] = {}
    with engine.connect() as conn:
        for host in hosts:
            own[host] = set(conn.execute(select(inst.c.uuid).where(
                inst.c.deleted == 0, inst.c.host == host)).scalars())
        ordered = sorted(uuids)
        for part in chunks(ordered, CHUNK):
            for r in conn.execute(select(inst.c.uuid, inst.c.host).where(
                    inst.c.deleted == 0, inst.c.uuid.in_(part))):
                hosts_of[r.uuid] = r.host
    return own, hosts_of


def _judge(dbs: Databases, read: dict[str, _Cell], result: Result) -> None:
    services = [s for cell in read.values() for s in cell.services]
    if not services:
        return
    try:
        driver = service_group(dbs.settings)
    except BackendUnreachable as exc:
        result.warn(f"{exc}: liveness unknown")
        return
    try:
        verdicts, warning = judge(driver, [s.record for s in services], utcnow())
    finally:
        driver.close()
    if warning is not None:
        result.warn(f"{warning} (so are the rings)")
    for service, verdict in zip(services, verdicts, strict=True):
        service.up = verdict


def _place_services(settings: dict[str, IronicSettings], cells: list[CellRef],
                    read: dict[str, _Cell], result: Result) -> dict[str, _View]:
    """Each configured service in the cell that has its service row."""
    views: dict[str, _View] = {}
    for given, mine in settings.items():
        home = _find(mine.host, cells, read)
        if home is None:
            result.warn(f"{mine.host} ({mine.source}): no nova-compute service of that host in "
                        "the cells read: its view is not computed")
        views[given] = _View(mine.host, home, mine)
    configured = {v.host.lower() for v in views.values()}
    for cell in cells:
        for s in read[cell.uuid].services:
            if s.has_ironic_node and s.host.lower() not in configured:
                result.warn(f"{s.host}: an Ironic compute service without settings given "
                            "(--service-config): its view is not computed")
    return views


def _find(host: str, cells: list[CellRef], read: dict[str, _Cell]) -> CellRef | None:
    for exact in (True, False):
        for cell in cells:
            for s in read[cell.uuid].services:
                if s.host == host or (not exact and s.host.lower() == host.lower()):
                    return cell
    return None


# --- the nodes --------------------------------------------------------------------


def _ironic_nodes(reach: IronicSettings, views: dict[str, _View], read: dict[str, _Cell],
                  result: Result, *, keep: bool) -> list[Node] | None:
    """Each service's own listing read as its driver reads it, through its own
    ``[ironic]`` settings (``reach``'s when its file says nothing of Ironic), with its
    own filter, and split by its ring (``view.share``). One connection per distinct
    connection settings, one request series per connection and filter. A connection
    Ironic does not answer on is one warning; the views read through it stay unknown.

    With ``keep``, every node: ``reach``'s unfiltered listing, with any node only
    another connection listed (None when no connection answered); without, only the
    views' counts are kept, and the result is an empty list when a connection answered.
    """
    default = config.connection_key(reach)
    users: dict[Any, tuple[IronicSettings, list[_View]]] = {default: (reach, [])}
    for view in views.values():
        mine = view.settings if view.settings.reaches_ironic else reach
        users.setdefault(config.connection_key(mine), (mine, []))[1].append(view)
    # One Node per node, in the order listed: a filtered listing holds the objects
    # the full one made.
    every: dict[str, Node] | None = {} if keep else None
    answered = False
    failed_default: str | None = None
    for key, (settings, served) in users.items():
        before = 0 if every is None else len(every)
        wanting: dict[Filter, list[_View]] = {Filter(): []} if key == default and keep else {}
        try:
            client = IronicClient(settings, budget=DEFAULT_TIMEOUT)
            try:
                api = (client.supports(CONDUCTOR_GROUP_VERSION), client.supports(SHARD_VERSION))
                for view in served:
                    view.api = api
                    wanting.setdefault(view.wanted, []).append(view)
                for wanted, group in wanting.items():
                    _read_listing(client.nodes(wanted), group, (key, wanted), read, result,
                                  every)
            finally:
                client.close()
        except IronicUnreachable as exc:
            if every is not None:
                for uuid in list(itertools.islice(every, before, None)):
                    del every[uuid]  # only this connection listed them, and not to the end
            for view in served:
                view.listing = view.fetch = view.share = view.managed = None
                view.listed = view.nodes_managed = None
                view.problems.append("Ironic unreachable through its [ironic] settings")
            if key == default:
                failed_default = str(exc)
            else:
                hosts = ", ".join(sorted(v.host for v in served))
                result.warn(f"Ironic unreachable through the [ironic] settings of {hosts} "
                            f"({exc}): their views are unknown")
            continue
        answered = True
    if failed_default is not None and not answered:
        result.warn(f"Ironic unreachable ({failed_default}): every node's managers are unknown")
    elif failed_default is not None:
        result.warn(f"Ironic unreachable ({failed_default}) through the [ironic] settings "
                    f"that list every node: the nodes are those the services' listings hold")
    if not answered:
        return None
    return [] if every is None else list(every.values())


def _read_listing(nodes: Iterator[Node], wanting: list[_View], fetch: tuple[Any, Filter],
                  read: dict[str, _Cell], result: Result, every: dict[str, Node] | None
                  ) -> None:
    """Read one listing once, splitting it by the ring of each view that wants it (one
    ``Shares`` per distinct ring). With ``every``, each node is kept (as the one object
    ``every`` holds for its UUID) and the views get the listing."""
    splits: dict[frozenset[str], Shares] = {}
    for view in wanting:
        view.fetch = fetch
        members = _ring_members(view, read, result)
        if members is not None:
            if members not in splits:
                splits[members] = Shares(HashRing(members), keep=every is not None)
            view.share = splits[members]
    shares = list(splits.values())
    kept: list[Node] | None = None if every is None else []
    count = 0
    for node in nodes:
        if kept is not None and every is not None:
            node = every.setdefault(node.uuid, node)
            kept.append(node)
        count += 1
        for share in shares:
            share.add(node)
    for view in wanting:
        view.listing = kept
        if view.cell is not None:
            view.listed = count


def _db_nodes(read: dict[str, _Cell]) -> list[Node]:
    nodes: dict[str, Node] = {}
    for cell in read.values():
        for uuid in cell.rows:
            on = cell.on_nodes.get(uuid)
            nodes.setdefault(uuid, Node(uuid, None if on is None else on[0], None, None))
    return list(nodes.values())


def _ring_members(view: _View, read: dict[str, _Cell], result: Result
                  ) -> frozenset[str] | None:
    """The members of the ring the view's service builds; None when its view cannot be
    computed (no service row, an invalid peer_list, a peer's liveness unknown)."""
    if view.cell is None:
        return None
    peers = [Peer(s.host, s.disabled, s.has_ironic_node, s.up)
             for s in read[view.cell.uuid].services]
    try:
        members = ring_members(view.settings, peers, api_has_groups=view.api[0])
    except InvalidPeerList as exc:
        view.managed, view.nodes_managed = [], 0
        view.problems.append(str(exc))
        return None
    if members is None:
        result.warn(f"{view.host}: a peer's liveness is unknown: its view is unknown")
    return members


def _running(view: _View, read: dict[str, _Cell]) -> bool | None:
    if view.cell is None:
        return False
    for s in read[view.cell.uuid].services:
        if s.host == view.host or s.host.lower() == view.host.lower():
            return s.up
    return False


def _node_rows(every: list[Node], views: dict[str, _View], read: dict[str, _Cell], *,
               unknown: bool) -> list[IronicOwnerNodeRow]:
    would: dict[str, list[str]] = {}
    managers: dict[str, list[str]] = {}
    uncertain: set[str] = set()  # nodes a running (or maybe running) unknown view may list
    unsure: list[_View] = []  # views whose listing is unknown too
    for view in views.values():
        running = _running(view, read)
        if view.managed is None:
            if running is not False and view.listing is not None:
                uncertain.update(n.uuid for n in view.listing)
            elif running is not False:
                unsure.append(view)
            continue
        for uuid in view.managed:
            would.setdefault(uuid, []).append(view.host)
            if running:
                managers.setdefault(uuid, []).append(view.host)
            elif running is None:
                uncertain.add(uuid)
    served: set[str] = set()
    for view in views.values():
        served.update(n.uuid for n in view.listing or ())
    if unsure:  # a node its filter passes may be in its listing
        for node in every:
            if any(v.wanted.passes(node) for v in unsure):
                uncertain.add(node.uuid)
    unread = any(v.listing is None for v in views.values())
    rows_by_node: dict[str, list[str]] = {}
    hosts_of: dict[str, str | None] = {}
    liveness: dict[str, bool | None] = {}
    for cell in read.values():
        for uuid, hosts in cell.rows.items():
            rows_by_node.setdefault(uuid, []).extend(hosts)
        hosts_of.update(cell.hosts_of)
        for s in cell.services:
            liveness.setdefault(s.host.lower(), s.up)
    out: list[IronicOwnerNodeRow] = []
    for node in every:
        managed_by = managers.get(node.uuid, [])
        reported = rows_by_node.get(node.uuid, [])
        flags: list[str] = []
        if unknown or node.uuid in uncertain:
            flags.append(UNKNOWN)
        if not unknown:
            if not managed_by and UNKNOWN not in flags:
                flags.append(UNMANAGED)
            if len(managed_by) > 1:
                flags.append(DOUBLE)
            if len(managed_by) == 1 and {h.lower() for h in reported} != {
                    managed_by[0].lower()}:
                flags.append(MOVING)
            if node.uuid not in served and views and not (
                    unread and any(v.listing is None and v.wanted.passes(node)
                                   for v in views.values())):
                flags.append(UNSERVED)
        if node.instance_uuid is not None:
            host = hosts_of.get(node.instance_uuid)
            alive = None if host is None else liveness.get(host.lower(), False)
            if host is None or alive is False:
                flags.append(INSTANCE_HOST_DOWN)
        out.append({
            "node": node.uuid, "conductor_group": node.conductor_group, "shard": node.shard,
            "instance_uuid": node.instance_uuid,
            "instance_host": hosts_of.get(node.instance_uuid) if node.instance_uuid else None,
            "reported_by": reported, "managed_by": managed_by,
            "would_manage": would.get(node.uuid, []), "flags": flags,
        })
    return out


def _service_row(view: _View, read: dict[str, _Cell]) -> IronicOwnerServiceRow:
    state = "no service"
    if view.cell is not None:
        for s in read[view.cell.uuid].services:
            if s.host.lower() == view.host.lower():
                state = host_state(disabled=s.disabled, forced_down=s.forced_down, up=s.up)
                break
    mine = view.settings
    return {
        "host": view.host, "cell_uuid": None if view.cell is None else view.cell.uuid,
        "cell_name": None if view.cell is None else view.cell.name, "state": state,
        "conductor_group": mine.conductor_group, "shard": mine.shard,
        "peer_list": list(mine.peer_list), "nodes_listed": view.listed,
        "nodes_managed": view.nodes_managed, "problems": view.problems, "source": mine.source,
    }
