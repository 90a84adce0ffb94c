"""map_cell_and_hosts, list_hosts and delete_host through the CLI."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest
from hostsupport import (
    DEAD_CELL_URL,
    UNKNOWN_CELL,
    add_hosts,
    add_node,
    host_mappings,
    kill_cell,
    map_host,
    node_flags,
    setup_cells,
)

from cellctl.clock import utcnow

TRANSPORT = "rabbit://guest:devstack@127.0.0.1:9999/"


@pytest.fixture
def cloud(cloud_no_pg):
    """SQLite and MariaDB (PostgreSQL runs only the tests that take ``any_cloud``)."""
    return cloud_no_pg


def synced(cloud):
    cloud.ok("api_db", "sync")
    cloud.ok("db", "sync")
    return cloud


def cells(cloud):
    return cloud.api_rows("cell_mappings")


# --- map_cell_and_hosts ----------------------------------------------------------


def test_map_cell_and_hosts_creates_cell_then_says_all_mapped(any_cloud):
    """Scenarios 12 and 13."""
    cloud = synced(any_cloud)
    add_hosts(cloud.cell_url, ["host0", "host1", "host2"])
    result = cloud.run("map_cell_and_hosts", "--transport-url", TRANSPORT, "--name", "ssd",
                       "--verbose")
    assert result.exit_code == 0, result.stderr
    (cell,) = cells(cloud)
    assert result.stdout == f"{cell['uuid']}\n"
    assert (cell["name"], cell["transport_url"], cell["database_connection"]) == (
        "ssd", TRANSPORT, cloud.cell_url)
    assert host_mappings(cloud) == dict.fromkeys(["host0", "host1", "host2"], cell["uuid"])
    assert set(node_flags(cloud.cell_url).values()) == {1}

    again = cloud.run("map_cell_and_hosts", "--transport-url", TRANSPORT, "--name", "ssd",
                      "--verbose")
    assert again.exit_code == 0
    assert again.stdout.splitlines() == [
        f"Host host{n} is already mapped to cell {cell['uuid']}" for n in range(3)
    ] + ["All hosts are already mapped to cell(s)."]
    assert len(cells(cloud)) == 1


def test_map_cell_and_hosts_joins_the_cell_of_mapped_hosts(cloud):
    """Scenario 14: host0 has two nodes; the missing host goes to the existing cell."""
    synced(cloud)
    result = cloud.ok("create_cell", "--name", "c", "--transport-url", "memory:///c",
                      "--database_connection", "mysql+pymysql://x:y@elsewhere/c", "--verbose")
    existing = result.stdout.strip().splitlines()[-1]
    add_hosts(cloud.cell_url, ["host0", "host1"])
    add_node(cloud.cell_url, "host0", hypervisor="host0-b")
    add_hosts(cloud.cell_url, ["host2"])
    map_host(cloud, "host0", existing)
    map_host(cloud, "host1", existing)
    result = cloud.run("map_cell_and_hosts", "--transport-url", TRANSPORT, "--name", "new",
                       "--verbose")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"Host host0 is already mapped to cell {existing}",
        f"Host host1 is already mapped to cell {existing}",
        f"Host host0 is already mapped to cell {existing}",
        existing,
    ]
    assert [c["name"] for c in cells(cloud)] == ["c"]
    assert host_mappings(cloud)["host2"] == existing


def test_map_cell_and_hosts_without_hosts_is_0(cloud):
    """Scenario 15."""
    synced(cloud)
    result = cloud.run("map_cell_and_hosts", "--transport-url", TRANSPORT)
    assert result.exit_code == 0
    assert result.stdout == "No hosts found to map to cell, exiting.\n"
    assert cells(cloud) == []


def test_map_cell_and_hosts_bad_transport_is_1(cloud):
    synced(cloud)
    add_hosts(cloud.cell_url, ["host0"])
    cases = [
        ([], {"CELLCTL_TRANSPORT_URL": ""}, "Must specify --transport-url"),
        (["--transport-url", "not-a-url"], {}, "Invalid transport URL: No scheme specified"),
        (["--transport-url", "rabit://u:secretpw@mq/"], {}, "Invalid transport URL:"),
    ]
    for args, env, message in cases:
        result = cloud.run("map_cell_and_hosts", *args, env=env)
        assert (result.exit_code, message in result.stdout) == (1, True), (args, result.stdout)
        assert "secretpw" not in result.stderr + result.stdout
    assert cells(cloud) == []
    assert host_mappings(cloud) == {}


def test_map_cell_and_hosts_reuses_the_cell_of_its_database(cloud):
    """A run killed after creating the cell, run again, does not create a second cell."""
    synced(cloud)
    add_hosts(cloud.cell_url, ["host0", "host1"])
    first = cloud.ok("create_cell", "--name", "cell1", "--verbose").stdout.splitlines()[-1]
    result = cloud.run("map_cell_and_hosts", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "cell_uuid": first, "cell_created": False, "compute_nodes": 2,
        "hosts_mapped": ["host0", "host1"], "exit_code": 0,
    }
    assert "--transport-url not provided in the command line" in result.stderr
    assert len(cells(cloud)) == 1


def test_map_cell_and_hosts_database_down_is_255(cloud):
    synced(cloud)
    result = cloud.run("map_cell_and_hosts", "--transport-url", TRANSPORT,
                       env={"CELLCTL_DATABASE_CONNECTION": DEAD_CELL_URL})
    assert result.exit_code == 255
    assert len(result.stdout.splitlines()) == 1
    assert "secretpw" not in result.stderr + result.stdout
    assert cells(cloud) == []


# --- list_hosts --------------------------------------------------------------------


@pytest.fixture
def two_cells(cloud):
    london, dallas = setup_cells(cloud, extra_cells=1)
    cloud.execute(cloud.api_url, "UPDATE cell_mappings SET name = 'london' WHERE name = 'cell1'")
    cloud.execute(cloud.api_url, "UPDATE cell_mappings SET name = NULL WHERE name = 'cell2'")
    cloud.london, cloud.dallas = london, dallas
    return cloud


def table_rows(stdout):
    return [[c.strip() for c in line.split("|")[1:-1]] for line in stdout.splitlines()
            if line.startswith("|")]


def test_list_hosts_sorted_and_by_cell(two_cells):
    """Scenario 46; an unnamed cell prints None."""
    cloud = two_cells
    map_host(cloud, "fake-host-2", cloud.dallas)
    map_host(cloud, "fake-host-1", cloud.london)
    map_host(cloud, "Zed", cloud.london)
    result = cloud.run("list_hosts")
    assert result.exit_code == 0
    assert table_rows(result.stdout) == [
        ["Cell Name", "Cell UUID", "Hostname"],
        ["london", cloud.london, "Zed"],  # case-sensitive, as nova-manage sorts
        ["london", cloud.london, "fake-host-1"],
        ["None", cloud.dallas, "fake-host-2"],
    ]
    only = cloud.run("cell_v2", "list_hosts", "--cell", cloud.london, "--format", "json")
    assert json.loads(only.stdout) == [
        {"cell_name": "london", "cell_uuid": cloud.london, "hostname": "Zed"},
        {"cell_name": "london", "cell_uuid": cloud.london, "hostname": "fake-host-1"},
    ]


def test_list_hosts_unknown_cell_is_1(two_cells):
    for value in (UNKNOWN_CELL, "garbage"):
        result = two_cells.run("list_hosts", "--cell_uuid", value)
        assert result.exit_code == 1, value
        assert f"Cell with uuid {value} was not found" in result.stdout


def test_list_hosts_status_reads_each_cell_and_survives_a_dead_one(two_cells):
    cloud = two_cells
    old = utcnow() - datetime.timedelta(seconds=300)
    add_hosts(cloud.cell_url, ["up", "down", "off", "forced", "sick-but-off"])
    cloud.execute(cloud.cell_url, "UPDATE services SET last_seen_up = :t "
                  "WHERE host IN ('down', 'sick-but-off')", {"t": old})
    cloud.execute(cloud.cell_url, "UPDATE services SET disabled = :t "
                  "WHERE host IN ('off', 'sick-but-off')", {"t": True})
    cloud.execute(cloud.cell_url, "UPDATE services SET forced_down = :t WHERE host = 'forced'",
                  {"t": True})
    for host in ["up", "down", "off", "forced", "sick-but-off", "no-service"]:
        map_host(cloud, host, cloud.london)
    map_host(cloud, "far", cloud.dallas)
    kill_cell(cloud, cloud.dallas)

    result = cloud.run("list_hosts", "--status")
    assert result.exit_code == 0
    assert {row[2]: row[3] for row in table_rows(result.stdout)[1:]} == {
        "up": "up", "down": "down", "off": "disabled", "forced": "forced down",
        "sick-but-off": "down", "no-service": "no service", "far": "unknown",
    }
    assert cloud.dallas in result.stderr
    assert "secretpw" not in result.stderr + result.stdout

    as_json = cloud.run("list_hosts", "--status", "--format", "json")
    assert as_json.exit_code == 0
    listing = json.loads(as_json.stdout)
    assert {"cell_name": None, "cell_uuid": cloud.dallas, "hostname": "far",
            "state": "unknown"} in listing
    warnings = [json.loads(line) for line in as_json.stderr.splitlines()]
    assert [w["unreachable_cells"] for w in warnings if "unreachable_cells" in w] == [
        [cloud.dallas]]


# --- delete_host -------------------------------------------------------------------


def test_delete_host_exit_codes_in_nova_order(two_cells):
    """Scenario 55: 1 cell, 2 host, 3 other cell, 4 instances, then 0."""
    cloud = two_cells
    add_hosts(cloud.cell_url, ["busy"])
    map_host(cloud, "busy", cloud.london)
    map_host(cloud, "theirs", cloud.dallas)
    cloud.execute(cloud.cell_url, "INSERT INTO instances (uuid, host, deleted) "
                  "VALUES (:u, 'busy', 0)", {"u": str(uuid.uuid4())})
    cases = [
        (str(uuid.uuid4()), "busy", 1, "was not found."),
        ("garbage", "busy", 1, "was not found"),
        (cloud.london, "nobody", 2, "The host nobody was not found."),
        (cloud.london, "theirs", 3, f"The host theirs was not found in the cell {cloud.london}."),
        (cloud.london, "busy", 4, "There are instances on the host busy."),
    ]
    for cell, host, code, message in cases:
        result = cloud.run("delete_host", "--cell_uuid", cell, "--host", host)
        assert (result.exit_code, message in result.stdout) == (code, True), (host, result.stdout)
    assert set(host_mappings(cloud)) == {"busy", "theirs"}

    cloud.execute(cloud.cell_url, "UPDATE instances SET deleted = id")
    result = cloud.run("delete_host", "--cell_uuid", cloud.london, "--host", "busy")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert set(host_mappings(cloud)) == {"theirs"}
    assert set(node_flags(cloud.cell_url).values()) == {0}


def test_delete_host_without_nodes_and_json(two_cells):
    cloud = two_cells
    add_hosts(cloud.cell_url, ["mapped"])
    cloud.ok("discover_hosts")
    map_host(cloud, "nodeless", cloud.london)
    result = cloud.run("delete_host", "--cell_uuid", cloud.london, "--host", "nodeless",
                       "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"host": "nodeless", "cell_uuid": cloud.london,
                                         "deleted": True, "nodes_unmapped": 0, "exit_code": 0}
    cloud.ok("delete_host", "--cell_uuid", cloud.london, "--host", "mapped")
    assert set(node_flags(cloud.cell_url).values()) == {0}
    # The node is found again.
    assert cloud.run("discover_hosts", "--strict").exit_code == 0
    assert set(host_mappings(cloud)) == {"mapped"}


def test_delete_host_with_dead_cell_database_is_255(two_cells):
    cloud = two_cells
    map_host(cloud, "far", cloud.dallas)
    kill_cell(cloud, cloud.dallas)
    result = cloud.run("delete_host", "--cell_uuid", cloud.dallas, "--host", "far")
    assert result.exit_code == 255
    assert len(result.stdout.splitlines()) == 1
    assert "secretpw" not in result.stderr + result.stdout
    assert set(host_mappings(cloud)) == {"far"}
