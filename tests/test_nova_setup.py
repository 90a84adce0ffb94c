"""simple_cell_setup side by side with nova-manage 34 on databases Nova built itself.
See tests/nova_support.py for how a step is compared."""

from __future__ import annotations

import pytest
from nova_env import schema_shape
from nova_support import CELL0_UUID

pytestmark = [pytest.mark.nova, pytest.mark.mysql]

SETUP = ("cell_v2", "simple_cell_setup", "--transport-url", "rabbit://u:p@mq1:5672/")


def test_simple_cell_setup(side_by_side):
    pair = side_by_side
    pair.add_compute_nodes("cell1", [{"host": "h0", "hypervisor_hostname": "h0-1"},
                                     {"host": "h0", "hypervisor_hostname": "h0-2"},
                                     {"host": "h1"}])
    pair.add_instances("cell1", [{"host": "h0"}, {"host": "h1"}, {"host": "h1", "hidden": 1}])
    # Documented difference: cellctl marks the nodes of the hosts it maps.
    nodes = ["cell1.compute_nodes"]
    pair.step(*SETUP, code=0, except_tables=nodes)
    cells = {c["uuid"]: c for c in pair.ours.rows("api", "cell_mappings")}
    assert cells[CELL0_UUID]["database_connection"] == pair.ours.url("cell1_cell0")
    assert len(pair.ours.rows("api", "host_mappings")) == 2
    assert len(pair.ours.rows("api", "instance_mappings")) == 2
    # run again: already done, nothing changes
    nova, ours = pair.step(*SETUP, code=0, except_tables=nodes)
    expected = ["Cell0 is already setup", "All hosts are already mapped to cell(s)."]
    assert nova.lines == expected
    assert ours.lines == expected


def test_simple_cell_setup_without_hosts(side_by_side):
    pair = side_by_side
    nova, ours = pair.step(*SETUP, code=1)
    assert nova.lines == ours.lines == ["No hosts found to map to cell, exiting."]
    assert [c["uuid"] for c in pair.ours.rows("api", "cell_mappings")] == [CELL0_UUID]


def test_simple_cell_setup_leaves_an_empty_cell0_to_nova(side_by_side):
    """A first setup: cell0's database exists but is empty. nova-manage creates Nova's
    schema there. cellctl cannot (it has only its own tables) and must not put its own
    there either: Nova's `db sync` would then fail on cell0 for ever. It says so, as
    nova-manage does when it cannot sync cell0, and goes on; `nova-manage db sync`
    (which a Nova deployment runs anyway) then creates cell0's schema."""
    pair = side_by_side
    pair.empty_database("cell1_cell0")
    pair.add_compute_nodes("cell1", [{"host": "h0"}])
    _, ours = pair.step(*SETUP, code=0, same_state=False)
    assert "Unable to sync cell0 schema" in ours.stdout + ours.stderr
    assert "nova-manage db sync" in ours.stdout + ours.stderr
    with pair.ours.engine("cell1_cell0").connect() as conn:
        assert list(conn.exec_driver_sql("SHOW TABLES")) == []
    pair.assert_same_state("simple_cell_setup",
                           except_tables=["cell1.compute_nodes", "cell1_cell0.services",
                                          "cell1_cell0.compute_nodes", "cell1_cell0.instances"])

    synced = pair.nova_manage("db", "sync", side=pair.ours)
    assert synced.code == 0, synced
    assert schema_shape(pair.ours.engine("cell1_cell0")) == schema_shape(
        pair.nova.engine("cell1_cell0"))
