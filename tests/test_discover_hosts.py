"""discover_hosts through the CLI: Nova's semantics, output and exit codes, plus cellctl's fixes."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa
from hostsupport import (
    UNKNOWN_CELL,
    add_hosts,
    add_node,
    cellctl_process,
    host_mappings,
    kill_cell,
    map_host,
    node_flags,
    setup_cells,
)


@pytest.fixture
def cloud(cloud_no_pg):
    """SQLite and MariaDB (PostgreSQL runs only the tests that take ``any_cloud``)."""
    return cloud_no_pg


def test_discover_maps_each_cell_verbose_like_nova(any_cloud):
    """Scenario 58, then 59 and 56: nothing new on the second run."""
    cloud = any_cloud
    cell1, cell2 = setup_cells(cloud, extra_cells=1, cell0=True)
    add_hosts(cloud.cell_urls[0], ["host0"])
    add_hosts(cloud.cell_urls[1], ["host1"])
    (node0,) = node_flags(cloud.cell_urls[0])
    (node1,) = node_flags(cloud.cell_urls[1])

    result = cloud.run("discover_hosts", "--verbose")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Found 3 cell mappings.",
        "Skipping cell0 since it does not contain hosts.",
        f"Getting computes from cell 'cell1': {cell1}",
        f"Checking host mapping for compute host 'host0': {node0}",
        f"Creating host mapping for compute host 'host0': {node0}",
        f"Found 1 unmapped computes in cell: {cell1}",
        f"Getting computes from cell 'cell2': {cell2}",
        f"Checking host mapping for compute host 'host1': {node1}",
        f"Creating host mapping for compute host 'host1': {node1}",
        f"Found 1 unmapped computes in cell: {cell2}",
    ]
    # one summary line on stderr, nothing else (stdout above is nova-manage's)
    assert result.stderr == "discover_hosts: 2 new host mappings in 2 cells read\n"
    assert host_mappings(cloud) == {"host0": cell1, "host1": cell2}
    assert node_flags(cloud.cell_urls[0]) == {node0: 1}
    assert node_flags(cloud.cell_urls[1]) == {node1: 1}

    again = cloud.run("discover_hosts")
    assert (again.exit_code, again.stdout) == (0, "")  # nova-manage's: nothing
    assert again.stderr == "discover_hosts: 0 new host mappings in 2 cells read\n"
    assert cloud.run("discover_hosts", "--strict").exit_code == 1
    add_hosts(cloud.cell_urls[1], ["host2"])
    assert cloud.run("discover_hosts", "--strict").exit_code == 0
    assert host_mappings(cloud) == {"host0": cell1, "host1": cell2, "host2": cell2}


def test_discover_one_cell_then_all(cloud):
    """Scenario 57: --cell_uuid maps that cell only."""
    cell1, cell2 = setup_cells(cloud, extra_cells=1)
    add_hosts(cloud.cell_urls[0], ["a1", "a2"])
    add_hosts(cloud.cell_urls[1], ["b1"])
    result = cloud.run("discover_hosts", "--cell_uuid", cell2, "--verbose")
    assert result.exit_code == 0
    assert "Found 2 cell mappings." not in result.stdout  # only without --cell_uuid
    assert result.stdout.splitlines()[0] == f"Getting computes from cell 'cell2': {cell2}"
    assert host_mappings(cloud) == {"b1": cell2}
    cloud.ok("discover_hosts")
    assert host_mappings(cloud) == {"a1": cell1, "a2": cell1, "b1": cell2}


def test_discover_unknown_or_malformed_cell_is_255(cloud):
    """As nova-manage, which crashes on CellMappingNotFound."""
    setup_cells(cloud)
    add_hosts(cloud.cell_url, ["h1"])
    for value in ("not-a-uuid", UNKNOWN_CELL):
        result = cloud.run("discover_hosts", "--cell_uuid", value)
        assert result.exit_code == 255, value
        assert result.stdout == (
            f"An error has occurred:\nCellMappingNotFound: Cell {value} has no mapping.\n")
    assert host_mappings(cloud) == {}


def test_discover_marks_every_node_of_a_mapped_host(cloud):
    """Difference 6: second nodes and NULL-mapped nodes are not rescanned forever."""
    (cell1,) = setup_cells(cloud)
    add_hosts(cloud.cell_url, ["ironic"])
    second = add_node(cloud.cell_url, "ironic", hypervisor="node-2")
    null_node = add_node(cloud.cell_url, "other", mapped=None)
    result = cloud.run("discover_hosts", "--verbose")
    assert result.exit_code == 0
    assert f"Found 2 unmapped computes in cell: {cell1}" in result.stdout
    assert result.stdout.count("Creating host mapping for compute host 'ironic'") == 1
    assert f"Creating host mapping for compute host 'other': {null_node}" in result.stdout
    assert set(node_flags(cloud.cell_url).values()) == {1}
    assert node_flags(cloud.cell_url)[second] == 1
    # A host mapped by hand, e.g. by an older tool: its nodes are marked without a new mapping.
    late = add_node(cloud.cell_url, "ironic", hypervisor="node-3")
    result = cloud.run("discover_hosts", "--verbose", "--strict")
    assert result.exit_code == 1
    assert f"Checking host mapping for compute host 'ironic': {late}" in result.stdout
    assert node_flags(cloud.cell_url)[late] == 1
    assert host_mappings(cloud) == {"ironic": cell1, "other": cell1}


def test_discover_warns_about_host_mapped_to_another_cell(cloud):
    cell1, cell2 = setup_cells(cloud, extra_cells=1)
    add_hosts(cloud.cell_urls[1], ["moved", "fresh"])
    map_host(cloud, "moved", cell1)
    result = cloud.run("discover_hosts")
    assert result.exit_code == 0
    assert f"WARNING: Host 'moved' of cell 'cell2' ({cell2}) is mapped to cell {cell1}" \
        in result.stderr
    assert host_mappings(cloud) == {"moved": cell1, "fresh": cell2}
    flags = sorted(node_flags(cloud.cell_urls[1]).values())
    assert flags == [0, 1]  # the conflicting node stays unmapped, to be seen again


def test_discover_by_service(cloud):
    """Scenario 60: exact output; deleted services are not mapped, disabled ones are."""
    (cell1,) = setup_cells(cloud)
    add_hosts(cloud.cell_url, ["host1", "host2", "gone", "off"], with_nodes=False)
    cloud.execute(cloud.cell_url, "UPDATE services SET deleted = id WHERE host = 'gone'")
    cloud.execute(cloud.cell_url, "UPDATE services SET disabled = :t WHERE host = 'off'",
                  {"t": True})
    map_host(cloud, "host2", cell1)
    cloud.execute(cloud.api_url, "UPDATE cell_mappings SET name = NULL")
    result = cloud.run("discover_hosts", "--cell_uuid", cell1, "--by-service", "--verbose")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"Getting computes from cell: {cell1}",
        "Creating host mapping for service host1",
        "Creating host mapping for service off",
        f"Found 2 unmapped computes in cell: {cell1}",
    ]
    assert host_mappings(cloud) == {"host1": cell1, "host2": cell1, "off": cell1}


def test_discover_carries_on_past_a_dead_cell(cloud):
    cell1, dead = setup_cells(cloud, extra_cells=1)
    kill_cell(cloud, dead)
    add_hosts(cloud.cell_url, ["h1", "h2"])
    result = cloud.run("discover_hosts", "--format", "json")
    assert result.exit_code == 1
    assert host_mappings(cloud) == {"h1": cell1, "h2": cell1}
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"level": "warning", "message": "Some cells could not be reached",
            "unreachable_cells": [dead]} in lines
    assert any(dead in line.get("message", "") for line in lines)
    assert "secretpw" not in result.stderr + result.stdout
    data = json.loads(result.stdout)
    assert data["hosts_mapped"] == 2
    assert data["exit_code"] == 1
    assert data["unreachable_cells"] == [dead]


def test_discover_gives_up_with_2_when_another_writer_keeps_winning(cloud):
    """A writer outside cellctl's lock maps a host under our feet on every retry."""
    setup_cells(cloud)
    add_hosts(cloud.cell_url, ["h1", "victim"])
    cloud.execute(cloud.api_url, "INSERT INTO cell_mappings (uuid, name) VALUES (:u, 'other')",
                  {"u": str(uuid.uuid4())})
    map_host(cloud, "taken", cloud.api_rows("cell_mappings")[-1]["uuid"])
    if cloud.factory.backend == "sqlite":
        trigger = ("CREATE TRIGGER steal BEFORE INSERT ON host_mappings WHEN NEW.host = 'victim' "
                   "BEGIN INSERT INTO host_mappings (cell_id, host) VALUES (NEW.cell_id, "
                   "'victim'); END")
    else:  # MariaDB cannot write the trigger's own table: the row is turned into a duplicate
        trigger = ("CREATE TRIGGER steal BEFORE INSERT ON host_mappings FOR EACH ROW "
                   "IF NEW.host = 'victim' THEN SET NEW.host = 'taken'; END IF")
    cloud.execute(cloud.api_url, trigger)
    result = cloud.run("discover_hosts")
    assert result.exit_code == 2
    assert "Duplicate host mapping was encountered" in result.stdout
    assert "mapping already exists" in result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert "victim" not in host_mappings(cloud)


def test_discover_maps_what_a_retry_finds_free(cloud):
    """A collision that goes away (the other writer committed) is retried, not fatal."""
    (cell1,) = setup_cells(cloud)
    add_hosts(cloud.cell_url, [f"h{i}" for i in range(5)])
    # Another program's transaction holds h3's mapping uncommitted while cellctl
    # looks up and inserts (on SQLite it holds the write lock: cellctl waits).
    engine = sa.create_engine(cloud.api_url)
    conn = engine.connect()
    try:
        conn.execute(sa.text("INSERT INTO host_mappings (cell_id, host) "
                             "SELECT id, 'h3' FROM cell_mappings WHERE name = 'cell1'"))
        proc = cellctl_process(cloud, "discover_hosts", "--verbose")
        time.sleep(1.5)  # cellctl starts, reads the cell and blocks on h3
        conn.commit()
        out, err = proc.communicate(timeout=60)
    finally:
        conn.close()
        engine.dispose()
    assert proc.returncode == 0, err
    assert "Traceback" not in out + err
    assert host_mappings(cloud) == {f"h{i}": cell1 for i in range(5)}
    assert "Creating host mapping for compute host 'h3'" not in out
    assert f"Found 4 unmapped computes in cell: {cell1}" in out
    assert set(node_flags(cloud.cell_url).values()) == {1}


def test_discover_shows_progress_on_a_terminal_only(sqlite_factory, make_cloud):
    cloud = make_cloud(sqlite_factory)
    setup_cells(cloud)
    add_hosts(cloud.cell_url, [f"h{i}" for i in range(1500)])
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "cellctl", "discover_hosts"],
                            env={**os.environ, **cloud.env}, stdout=subprocess.PIPE,
                            stderr=follower, text=True)
    os.close(follower)
    out, _ = proc.communicate(timeout=60)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert out == ""
    assert b"Discovering hosts in cell 'cell1'" in shown
    assert b"1500/1500" in shown
    assert len(host_mappings(cloud)) == 1500


def test_discover_compares_hosts_as_the_database_does(cloud):
    """MariaDB's collation makes Host-A and host-a one host: mapped, not a collision."""
    (cell1,) = setup_cells(cloud)
    map_host(cloud, "host-a", cell1)
    add_hosts(cloud.cell_url, ["Host-A"])
    result = cloud.run("discover_hosts")
    assert result.exit_code == 0, result.stderr
    if cloud.factory.backend == "mysql":
        assert host_mappings(cloud) == {"host-a": cell1}
    else:
        assert host_mappings(cloud) == {"host-a": cell1, "Host-A": cell1}
    assert set(node_flags(cloud.cell_url).values()) == {1}
