"""``cellctl ironic move`` side by side with ``nova-manage db ironic_compute_node_move``
(nova-manage 34) on twin databases Nova built itself: the same refusals and the same rows
after. See tests/nova_support.py for how the copies are compared.

Documented differences, asserted here: nova-manage exits 255 with a traceback for a
refusal, cellctl 2 with the failed checks; nova-manage moves a node to a destination
that is down (only forced down is refused), cellctl refuses it too; a node moved
already is nothing to move for cellctl (3), a refusal for nova-manage (its source is
now the destination, which is not forced down).
"""

from __future__ import annotations

import json

import pytest
from nova_support import CELL0_UUID, seed_uuid
from tooz.hashring import HashRing as ToozRing

pytestmark = [pytest.mark.nova, pytest.mark.mysql]

SERVICES = ["bm-src", "bm-dst", "bm-forced", "bm-down", "bm-other"]
NODES = {name: seed_uuid(f"ironic:{name}") for name in
         ("plain", "one", "two", "more1", "more2", "more3")}


def ironic_nodes(pair, rows):
    """compute_nodes rows of Ironic nodes: (node name, host, service id)."""
    pair.execute("cell1", (
        "INSERT INTO compute_nodes (created_at, service_id, host, hypervisor_hostname, uuid, "
        "vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used, local_gb_used, "
        "hypervisor_type, hypervisor_version, cpu_info, stats, mapped, deleted, "
        "cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio) VALUES "
        "('2025-01-01 00:00:00', :service_id, :host, :node, :node, 1, 1024, 10, 0, 0, 0, "
        "'ironic', 1, '{}', '{}', 1, 0, 16.0, 1.5, 1.0)"
    ), [{"node": NODES[name], "host": host, "service_id": sid} for name, host, sid in rows])


def instance_on(pair, node, count, start):
    instances = pair.add_instances("cell1", [
        {"id": start + i, "uuid": seed_uuid(f"instance:{node}:{i}"), "host": "bm-src"}
        for i in range(count)])
    pair.execute("cell1", "UPDATE instances SET node = :node WHERE host = 'bm-src' "
                 "AND node = 'bm-src'", {"node": NODES[node]})
    return instances


@pytest.fixture
def pair(side_by_side):
    pair = side_by_side
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    pair.add_cell("cell1", "cell1")
    pair.add_services("cell1", [{"id": i + 1, "host": h} for i, h in enumerate(SERVICES)])
    ids = {h: i + 1 for i, h in enumerate(SERVICES)}
    # Up by the db driver (service_down_time 60 s), but bm-down.
    pair.execute("cell1", "UPDATE services SET last_seen_up = UTC_TIMESTAMP() "
                 "WHERE host != 'bm-down'")
    pair.execute("cell1", "UPDATE services SET forced_down = 1 WHERE host = 'bm-forced'")
    ironic_nodes(pair, [(name, "bm-src", ids["bm-src"]) for name in NODES])
    ironic_nodes_of_others(pair, ids)
    instance_on(pair, "one", 1, 1)
    instance_on(pair, "two", 2, 10)
    pair.ids = ids
    return pair


def ironic_nodes_of_others(pair, ids):
    """One node each for the other services, so they are Ironic ring members."""
    pair.execute("cell1", (
        "INSERT INTO compute_nodes (created_at, service_id, host, hypervisor_hostname, uuid, "
        "vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used, local_gb_used, "
        "hypervisor_type, hypervisor_version, cpu_info, stats, mapped, deleted, "
        "cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio) VALUES "
        "('2025-01-01 00:00:00', :sid, :host, :node, :node, 1, 1024, 10, 0, 0, 0, "
        "'ironic', 1, '{}', '{}', 1, 0, 16.0, 1.5, 1.0)"
    ), [{"sid": ids[h], "host": h, "node": seed_uuid(f"ironic:own:{h}")}
        for h in SERVICES if h != "bm-src"])


def both(pair, node, destination, *, nova_code, cellctl_code, same_state=True):
    nova = pair.nova_manage("db", "ironic_compute_node_move", "--ironic-node-uuid",
                            NODES[node], "--destination-host", destination)
    ours = pair.cellctl("--format", "json", "ironic", "move", "--from", "bm-src", "--to",
                        destination, "--node", NODES[node], "--apply")
    assert (nova.code, ours.code) == (nova_code, cellctl_code), f"{nova}\n=== cellctl: {ours}"
    if same_state:
        pair.assert_same_state(f"move {node} to {destination}")
    return nova, {row["node"]: row for row in json.loads(ours.stdout)}


def failed(rows, node):
    return rows[NODES[node]]["failed_checks"]


def test_same_refusals_and_same_rows_as_nova_manage(pair):
    nova, rows = both(pair, "one", "bm-dst", nova_code=255, cellctl_code=2)
    assert "Source service is not yet forced down" in nova.stdout
    assert failed(rows, "one") == ["source forced down"]

    pair.execute("cell1", "UPDATE services SET forced_down = 1 WHERE host = 'bm-src'")
    nova, rows = both(pair, "one", "bm-nowhere", nova_code=255, cellctl_code=2)
    assert "ComputeHostNotFound" in nova.stdout
    assert failed(rows, "one") == ["destination exists"]
    nova, rows = both(pair, "one", "bm-forced", nova_code=255, cellctl_code=2)
    assert "Destination compute is forced down" in nova.stdout
    assert failed(rows, "one") == ["destination not forced down"]
    nova, rows = both(pair, "two", "bm-dst", nova_code=255, cellctl_code=2)
    assert "more than one instance" in nova.stdout
    assert failed(rows, "two") == ["at most one instance"]

    # Moved, with its instance; without one.
    both(pair, "one", "bm-dst", nova_code=0, cellctl_code=0)
    both(pair, "plain", "bm-dst", nova_code=0, cellctl_code=0)
    node = next(r for r in pair.ours.rows("cell1", "compute_nodes")
                if r["hypervisor_hostname"] == NODES["one"])
    assert (node["host"], node["service_id"]) == ("bm-dst", pair.ids["bm-dst"])
    assert [i["host"] for i in pair.ours.rows("cell1", "instances")
            if i["node"] == NODES["one"]] == ["bm-dst"]
    # Again: nova-manage refuses (its source is now bm-dst), cellctl has nothing to do.
    nova, rows = both(pair, "one", "bm-dst", nova_code=255, cellctl_code=3)
    assert rows[NODES["one"]]["status"] == "already moved"

    # A destination that is down but not forced down: nova-manage moves, cellctl refuses.
    nova, rows = both(pair, "more1", "bm-down", nova_code=0, cellctl_code=2, same_state=False)
    assert failed(rows, "more1") == ["destination up"]
    pair.assert_same_state("down destination", except_tables=["cell1.compute_nodes"])
    assert [r["host"] for r in pair.nova.rows("cell1", "compute_nodes")
            if r["hypervisor_hostname"] == NODES["more1"]] == ["bm-down"]
    assert [r["host"] for r in pair.ours.rows("cell1", "compute_nodes")
            if r["hypervisor_hostname"] == NODES["more1"]] == ["bm-src"]


def test_rebalance_is_nova_manage_moving_each_node_to_its_ring_owner(pair):
    pair.execute("cell1", "UPDATE services SET forced_down = 1 WHERE host = 'bm-src'")
    # Ring members: up, enabled, not forced down, with an Ironic node, not the source.
    members = {"bm-dst", "bm-other"}
    moved = ["plain", "one", "more1", "more2", "more3"]
    for name in moved:
        owner = next(iter(ToozRing(members, partitions=32).get_nodes(
            NODES[name].encode("utf-8"))))
        nova = pair.nova_manage("db", "ironic_compute_node_move", "--ironic-node-uuid",
                                NODES[name], "--destination-host", owner)
        assert nova.code == 0, str(nova)
    ours = pair.cellctl("--format", "json", "ironic", "move", "--from", "bm-src",
                        "--rebalance", "--apply")
    assert ours.code == 2, str(ours)  # "two" has two instances: refused, the rest moved
    rows = {row["node"]: row for row in json.loads(ours.stdout)}
    assert {n for n, r in rows.items() if r["status"] == "moved"} == {NODES[n] for n in moved}
    assert failed(rows, "two") == ["at most one instance"]
    pair.assert_same_state("rebalance")
