"""Which nova-compute service manages which Ironic node, as each service sees it.

Nova 34's ``IronicDriver`` (``_refresh_hash_ring`` then ``_refresh_cache``,
run at every ``get_available_nodes``), from the point of view of one service
with host ``H`` and its own ``[ironic]`` settings:

1. **Peers.** ``shard`` set: only ``H`` (the other services are not looked
   at). Else ``conductor_group`` set (and the API speaks 1.46): the hosts of
   ``peer_list``, compared exactly; an empty ``peer_list`` or one without ``H``
   is ``InvalidPeerList`` and the service manages nothing. Else: every service.
2. **Ring.** The cell's ``nova-compute`` services that are not deleted, not
   disabled, have an ironic ``compute_nodes`` row (deleted or not), are peers
   and are up by the service group (forced down is down); lower-cased; plus
   ``H.lower()`` always: a service counts itself in, disabled or not.
3. **Nodes.** Ironic's list, filtered by the service's ``conductor_group`` and
   ``shard``. A node whose ``instance_uuid`` is one of ``H``'s live instances
   is ``H``'s; a node without an instance is ``H``'s when the ring maps its
   UUID to ``H.lower()``; a node with another host's instance is not.

Every service builds its own ring, so two services can both manage a node (a
disabled one that still runs; two services on one shard), or none can.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cellctl.hashring import HashRing
from cellctl.ironic.config import IronicSettings
from cellctl.ironic.nodes import Node


@dataclass(frozen=True)
class Peer:
    """A nova-compute service row of the observer's cell, as the ring needs it."""

    host: str
    disabled: bool
    has_ironic_node: bool  # an ironic compute_nodes row on its host (deleted or not)
    up: bool | None  # the service group's verdict, forced down counted down; None: unknown


class InvalidPeerList(Exception):
    """Nova's ``InvalidPeerList``: the service's own host is not in its peer_list."""


def check_peer_list(settings: IronicSettings) -> None:
    """Nova's ``_check_peer_list`` (it only raises when a conductor group is set)."""
    if settings.conductor_group is None:
        return
    peers = set(settings.peer_list)
    if not peers:
        raise InvalidPeerList(f"{settings.host}: [ironic] conductor_group is set and "
                              "peer_list is empty: the service manages no node")
    if settings.host not in peers:
        raise InvalidPeerList(f"{settings.host}: [ironic] peer_list does not contain the "
                              "service's own host: the service manages no node")


def ring_members(settings: IronicSettings, peers: Iterable[Peer], *,
                 api_has_groups: bool = True) -> frozenset[str] | None:
    """The members of the ring ``settings.host`` builds; None when a peer's liveness
    that matters is unknown. Raises InvalidPeerList as Nova does."""
    peer_list: set[str] | None = {settings.host} if settings.shard else None
    if peer_list is None and settings.conductor_group is not None and api_has_groups:
        peer_list = set(settings.peer_list)
        check_peer_list(settings)
    me = settings.host.lower()
    members = {me}
    for peer in peers:
        if peer.disabled or not peer.has_ironic_node:
            continue
        if peer_list is not None and peer.host not in peer_list:
            continue
        if peer.host.lower() == me:
            continue  # counted in anyway
        if peer.up is None:
            return None
        if peer.up:
            members.add(peer.host.lower())
    return frozenset(members)


def managed_nodes(settings: IronicSettings, ring: HashRing, listing: Iterable[Node],
                  own_instances: set[str]) -> list[str]:
    """The UUIDs of the nodes of ``listing`` that ``settings.host`` manages."""
    me = settings.host.lower()
    managed = []
    for node in listing:
        if node.instance_uuid is not None:  # never rebalanced: its instance's host has it
            if node.instance_uuid in own_instances:
                managed.append(node.uuid)
        elif ring.owner(node.uuid) == me:
            managed.append(node.uuid)
    return managed


class Shares:
    """One listing split by one ring, for every service that shares both: the nodes
    without an instance by ring owner, the nodes with one by instance. Fed node by node
    (``add``) as the listing is read, so a cell of 200 services with one ring costs one
    pass over the nodes, not 200.

    ``of(host, own_instances)`` equals ``managed_nodes(settings, ring, listing,
    own_instances)`` as a set; ``count`` is its length. With ``keep=False`` only the
    counts are kept: one entry per ring member and per instance, however many nodes.
    """

    def __init__(self, ring: HashRing, *, keep: bool = True) -> None:
        self._ring = ring
        self._keep = keep
        self._by_owner: dict[str, list[str]] = {}
        self._by_instance: dict[str, list[str]] = {}
        self._owned: dict[str, int] = {}  # the same, counted
        self._on_instance: dict[str, int] = {}

    def add(self, node: Node) -> None:
        if node.instance_uuid is not None:  # never rebalanced: its instance's host has it
            key, lists, counts = node.instance_uuid, self._by_instance, self._on_instance
        else:
            owner = self._ring.owner(node.uuid)
            if owner is None:
                return
            key, lists, counts = owner, self._by_owner, self._owned
        counts[key] = counts.get(key, 0) + 1
        if self._keep:
            lists.setdefault(key, []).append(node.uuid)

    def of(self, host: str, own_instances: set[str]) -> list[str]:
        if not self._keep:
            raise ValueError("the node UUIDs were not kept (keep=False)")
        managed = list(self._by_owner.get(host.lower(), ()))
        for instance in self._own(own_instances):
            managed.extend(self._by_instance[instance])
        return managed

    def count(self, host: str, own_instances: set[str]) -> int:
        return self._owned.get(host.lower(), 0) + sum(
            self._on_instance[instance] for instance in self._own(own_instances))

    def _own(self, own_instances: set[str]) -> Iterable[str]:
        """The instances of ``own_instances`` that nodes of the listing carry."""
        if len(own_instances) < len(self._on_instance):
            return (i for i in own_instances if i in self._on_instance)
        return (i for i in self._on_instance if i in own_instances)


def contradictions(services: Mapping[str, IronicSettings]) -> dict[str, list[str]]:
    """Per host, how its settings contradict the others' (or its own)."""
    found: dict[str, list[str]] = {host: [] for host in services}
    by_shard: dict[str, list[str]] = {}
    for host, settings in services.items():
        if settings.shard:
            by_shard.setdefault(settings.shard, []).append(host)
    for shard, hosts in by_shard.items():
        if len(hosts) > 1:
            for host in hosts:
                others = ", ".join(h for h in hosts if h != host)
                found[host].append(f"shares shard {shard} with {others}")
    filtered = any(s.shard or s.conductor_group is not None for s in services.values())
    for host, settings in services.items():
        if settings.shard:
            continue
        if settings.conductor_group is not None:
            try:
                check_peer_list(settings)
            except InvalidPeerList:
                found[host].append("invalid peer_list (own host missing): manages nothing")
            for peer in settings.peer_list:
                theirs = services.get(peer)
                if peer != settings.host and theirs is not None and (
                        theirs.shard or theirs.conductor_group != settings.conductor_group):
                    found[host].append(f"peer {peer} serves another conductor group or a "
                                       "shard")
        elif filtered:
            found[host].append("no shard or conductor group: manages every node, while "
                               "other services serve shards or conductor groups")
    return found
