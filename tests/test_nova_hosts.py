"""Host mappings side by side with nova-manage 34 on databases Nova built itself:
discover_hosts (compute nodes and --by-service, --strict), list_hosts, delete_host,
map_cell_and_hosts. See tests/nova_support.py for how a step is compared."""

from __future__ import annotations

import pytest
from nova_support import CELL0_UUID, seed_uuid

pytestmark = [pytest.mark.nova, pytest.mark.mysql]


def mapped_flags(side, role="cell1"):
    return {(n["hypervisor_hostname"]): n["mapped"] for n in side.rows(role, "compute_nodes")}


def two_cells(pair):
    pair.add_database("cell2")
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    return pair.add_cell("cell1", "cell1"), pair.add_cell("cell2", "cell2")


def test_discover_hosts(side_by_side):
    pair = side_by_side
    cell1, cell2 = two_cells(pair)
    pair.add_compute_nodes("cell1", [
        {"host": "a"}, {"host": "b"},
        {"host": "c", "mapped": 1},  # mapped earlier
        {"host": "d", "deleted": True},
        {"host": "e", "hypervisor_hostname": "e-1"},  # two nodes, one host (ironic-like)
        {"host": "e", "hypervisor_hostname": "e-2"},
        {"host": "f"},  # host already mapped to cell2
    ])
    pair.add_compute_nodes("cell2", [{"host": "g"}])
    pair.map_host("c", cell1)
    pair.map_host("f", cell2)

    nova, ours = pair.step("cell_v2", "discover_hosts", "--cell_uuid", cell2, "--strict",
                           "--verbose", code=0)
    assert len(nova.lines) == 4 and nova.lines == ours.lines  # Nova's wording, line by line
    # Documented difference: nova-manage marks only the node it created the mapping
    # for; cellctl marks every node of a host mapped to this cell (e-2), so none is
    # re-read by every later run. The host mappings are the same.
    pair.step("cell_v2", "discover_hosts", "--strict", code=0,
              except_tables=["cell1.compute_nodes"])
    assert mapped_flags(pair.nova) == {"a": 1, "b": 1, "c": 1, "d": 0, "e-1": 1, "e-2": 0,
                                       "f": 0}
    assert mapped_flags(pair.ours) == {**mapped_flags(pair.nova), "e-2": 1}
    assert sorted(h["host"] for h in pair.ours.rows("api", "host_mappings")) == [
        "a", "b", "c", "e", "f", "g"]

    pair.step("cell_v2", "discover_hosts", "--strict", code=1,
              except_tables=["cell1.compute_nodes"])
    pair.step("cell_v2", "discover_hosts", "--verbose", code=0,
              except_tables=["cell1.compute_nodes"])


def test_discover_hosts_by_service(side_by_side):
    pair = side_by_side
    cell1, _ = two_cells(pair)
    pair.add_services("cell1", [
        {"host": "s1"},
        {"host": "s2"},  # mapped already
        {"host": "s3", "binary": "nova-scheduler", "topic": "scheduler"},
        {"host": "s4", "deleted": True},
        {"host": "s5", "disabled": 1},  # disabled services are still mapped
    ])
    pair.add_compute_nodes("cell1", [{"host": "s1"}])
    pair.map_host("s2", cell1)

    # Documented difference: cellctl also marks the compute nodes of the hosts it
    # maps by service, so a later plain discover_hosts does not re-read them.
    pair.step("cell_v2", "discover_hosts", "--by-service", "--strict", code=0,
              except_tables=["cell1.compute_nodes"])
    assert (mapped_flags(pair.nova), mapped_flags(pair.ours)) == ({"s1": 0}, {"s1": 1})
    assert sorted(h["host"] for h in pair.ours.rows("api", "host_mappings")) == [
        "s1", "s2", "s5"]
    pair.step("cell_v2", "discover_hosts", "--by-service", "--strict", code=1,
              except_tables=["cell1.compute_nodes"])


def test_list_hosts(side_by_side):
    pair = side_by_side
    cell1, cell2 = two_cells(pair)
    unnamed = pair.add_cell(None, "cell1_cell0", cell_uuid=seed_uuid("unnamed"),
                            transport_url="rabbit://x@mq-x:5672/")
    for host, cell in (("zeta", cell1), ("Alpha", cell2), ("beta", cell1), ("gamma", unnamed)):
        pair.map_host(host, cell)

    nova, ours = pair.step("cell_v2", "list_hosts", code=0)
    pair.assert_same_table(nova, ours)
    assert [row[2] for row in pair.table(pair.ours, ours)[1:]] == [
        "Alpha", "beta", "gamma", "zeta"]
    nova, ours = pair.step("cell_v2", "list_hosts", "--cell_uuid", cell1, code=0)
    pair.assert_same_table(nova, ours)
    pair.step("cell_v2", "list_hosts", "--cell_uuid", seed_uuid("nowhere"), code=1)


def test_delete_host(side_by_side):
    pair = side_by_side
    cell1, cell2 = two_cells(pair)
    pair.add_compute_nodes("cell1", [{"host": "idle", "mapped": 1}, {"host": "busy", "mapped": 1}])
    pair.add_instances("cell1", [{"host": "busy"}, {"host": "idle", "deleted": True}])
    for host in ("idle", "busy", "nodeless"):
        pair.map_host(host, cell1)
    pair.map_host("elsewhere", cell2)

    pair.step("cell_v2", "delete_host", "--cell_uuid", seed_uuid("nowhere"), "--host", "idle",
              code=1)
    pair.step("cell_v2", "delete_host", "--cell_uuid", cell1, "--host", "unknown", code=2)
    pair.step("cell_v2", "delete_host", "--cell_uuid", cell1, "--host", "elsewhere", code=3)
    pair.step("cell_v2", "delete_host", "--cell_uuid", cell1, "--host", "busy", code=4)
    pair.step("cell_v2", "delete_host", "--cell_uuid", cell1, "--host", "idle", code=0)
    pair.step("cell_v2", "delete_host", "--cell_uuid", cell1, "--host", "nodeless", code=0)
    assert mapped_flags(pair.ours) == {"idle": 0, "busy": 1}
    assert sorted(h["host"] for h in pair.ours.rows("api", "host_mappings")) == [
        "busy", "elsewhere"]


def test_map_cell_and_hosts(side_by_side):
    pair = side_by_side
    pair.add_compute_nodes("cell1", [{"host": "h0", "hypervisor_hostname": "h0-1"},
                                     {"host": "h0", "hypervisor_hostname": "h0-2"},
                                     {"host": "h1"}])
    # Documented difference: cellctl marks the nodes of the hosts it maps (nova-manage
    # leaves mapped=0, so every later discover_hosts reads them again).
    nodes = ["cell1.compute_nodes"]
    nova, ours = pair.step("cell_v2", "map_cell_and_hosts", "--name", "ssd", "--verbose",
                           "--transport-url", "rabbit://u:p@mq-ssd:5672/", code=0,
                           except_tables=nodes)
    assert set(mapped_flags(pair.nova).values()) == {0}
    assert set(mapped_flags(pair.ours).values()) == {1}
    # --verbose prints the new cell's UUID
    assert [c["uuid"] for c in pair.ours.rows("api", "cell_mappings")] == [ours.lines[-1]]
    # a new host joins the cell that its neighbours are mapped to; nothing else changes
    pair.add_compute_nodes("cell1", [{"id": 10, "host": "h2"}])
    pair.step("cell_v2", "map_cell_and_hosts", "--name", "ignored", code=0, except_tables=nodes)
    nova, ours = pair.step("cell_v2", "map_cell_and_hosts", code=0, except_tables=nodes)
    assert nova.lines[-1] == ours.lines[-1] == "All hosts are already mapped to cell(s)."


def test_map_cell_and_hosts_without_hosts(side_by_side):
    pair = side_by_side
    nova, ours = pair.step("cell_v2", "map_cell_and_hosts", "--transport-url",
                           "rabbit://u:p@mq:5672/", code=0)
    assert nova.lines == ["No hosts found to map to cell, exiting."]
    assert "No hosts found to map to cell" in ours.stdout + ours.stderr
    # Documented difference: without any transport URL nova-manage maps the hosts to a
    # new cell with oslo.messaging's default rabbit://; cellctl refuses.
    pair.add_compute_nodes("cell1", [{"host": "h0"}])
    pair.write_conf(transport_url=None)
    _, ours = pair.step("cell_v2", "map_cell_and_hosts", nova_code=0, cellctl_code=1,
                        same_state=False)
    assert [c["transport_url"] for c in pair.nova.rows("api", "cell_mappings")] == ["rabbit://"]
    assert [len(side.rows("api", "host_mappings")) for side in (pair.nova, pair.ours)] == [1, 0]
    assert "--transport-url" in ours.stdout  # where nova-manage prints it
