"""The service group through the CLI: service register, heartbeat, list."""

from __future__ import annotations

import datetime
import json
import signal
import time
import uuid

import pytest
from hostsupport import (
    CELL0,
    DEAD_CELL_URL,
    UNKNOWN_CELL,
    add_hosts,
    cellctl_process,
    kill_cell,
    setup_cells,
)

from cellctl.clock import utcnow


@pytest.fixture
def cloud(cloud_no_pg):
    """SQLite and MariaDB: PostgreSQL would add time but no coverage here."""
    return cloud_no_pg


@pytest.fixture
def cell(cloud):
    """Synced databases with [database] mapped as cell1."""
    (cloud.cell_uuid,) = setup_cells(cloud)
    return cloud


def services(cloud, url=None):
    return cloud.rows(url or cloud.cell_url, "services")


def as_datetime(value):
    """SQLite hands raw-SQL DATETIME values back as text."""
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else value


# --- register -----------------------------------------------------------------------


def test_register_adds_service_and_unmapped_node_once(cell):
    result = cell.run("service", "register", "--host", "cmp1")
    assert result.exit_code == 0, result.stderr
    (svc,) = services(cell)
    assert (svc["host"], svc["binary"], svc["topic"]) == ("cmp1", "nova-compute", "compute")
    assert svc["report_count"] == 0
    assert svc["deleted"] == 0
    assert uuid.UUID(svc["uuid"])
    assert svc["version"] > 0
    assert svc["created_at"] is not None and svc["last_seen_up"] is None
    assert not svc["disabled"] and not svc["forced_down"]
    (node,) = cell.rows(cell.cell_url, "compute_nodes")
    assert (node["host"], node["hypervisor_hostname"], node["service_id"]) == (
        "cmp1", "cmp1", svc["id"])
    assert node["mapped"] == 0 and node["deleted"] == 0
    assert node["hypervisor_type"] == "fake"
    assert uuid.UUID(node["uuid"])
    for column in ("vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used",
                   "local_gb_used", "hypervisor_version", "cpu_info"):
        assert node[column] is not None

    again = cell.run("service", "register", "--host", "cmp1", "--format", "json")
    assert again.exit_code == 0
    data = json.loads(again.stdout)
    assert (data["service_created"], data["compute_node_created"]) == (False, False)
    assert data["service_uuid"] == svc["uuid"]
    assert services(cell) == [svc]
    assert cell.rows(cell.cell_url, "compute_nodes") == [node]
    # The host is now discoverable.
    cell.ok("discover_hosts", "--strict")
    assert cell.api_rows("host_mappings")[0]["host"] == "cmp1"


def test_register_without_compute_node_and_other_binaries(cell):
    cell.ok("cell_v2", "service", "register", "--host", "ironic1", "--no-compute-node")
    cell.ok("service", "register", "--host", "ctl", "--binary", "nova-scheduler")
    assert {(s["host"], s["binary"], s["topic"]) for s in services(cell)} == {
        ("ironic1", "nova-compute", "compute"), ("ctl", "nova-scheduler", "scheduler")}
    assert cell.rows(cell.cell_url, "compute_nodes") == []
    # Registering ironic1's node later completes it.
    cell.ok("service", "register", "--host", "ironic1")
    assert len(cell.rows(cell.cell_url, "compute_nodes")) == 1


def test_register_into_another_cell_database(cloud):
    setup_cells(cloud, extra_cells=1)
    other = cloud.cell_urls[1]
    cloud.ok("service", "register", "--host", "far", "--database_connection", other)
    assert [s["host"] for s in services(cloud, other)] == ["far"]
    assert services(cloud) == []


def test_register_bad_input_is_1(cell):
    for args in (["--host", ""], ["--host", "x" * 256], ["--host", "ok", "--binary", " "]):
        result = cell.run("service", "register", *args)
        assert result.exit_code == 1, args
        assert len(result.stderr.splitlines()) == 1, args
    assert services(cell) == []


def test_register_with_dead_database_is_1(cell):
    result = cell.run("service", "register", "--host", "h", "--database_connection",
                      DEAD_CELL_URL)
    assert result.exit_code == 1
    assert "secretpw" not in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# --- heartbeat ----------------------------------------------------------------------


def test_heartbeat_counts_reports(cell):
    cell.ok("service", "register", "--host", "cmp1")
    before = utcnow()
    result = cell.run("service", "heartbeat", "--host", "cmp1", "--interval", "0.05",
                      "--count", "3", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["reports"] == 3
    (svc,) = services(cell)
    assert svc["report_count"] == 3
    assert as_datetime(svc["last_seen_up"]) >= before.replace(microsecond=0)
    assert svc["updated_at"] == svc["last_seen_up"]
    cell.ok("service", "heartbeat", "--host", "cmp1", "--count", "1")
    assert services(cell)[0]["report_count"] == 4


def test_heartbeat_bad_input_is_1(cell):
    cell.ok("service", "register", "--host", "cmp1")
    cases = [
        (["--host", "nobody", "--count", "1"], "No live nova-compute service on host nobody"),
        (["--host", "cmp1", "--interval", "0"], "--interval must be a positive number"),
        (["--host", "cmp1", "--interval", "soon"], "--interval must be a positive number"),
        (["--host", "cmp1", "--count", "0"], "--count must be a positive number"),
        (["--host", "cmp1", "--binary", "nova-conductor", "--count", "1"], "No live"),
    ]
    for args, message in cases:
        result = cell.run("service", "heartbeat", *args)
        assert (result.exit_code, message in result.stderr) == (1, True), (args, result.stderr)
    assert services(cell)[0]["report_count"] == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_heartbeat_runs_until_stopped(cell, stop):
    cell.ok("service", "register", "--host", "cmp1")
    proc = cellctl_process(cell, "service", "heartbeat", "--host", "cmp1", "--interval", "0.2")
    deadline = time.monotonic() + 30
    while services(cell)[0]["report_count"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=30)
    # stopped as every command is stopped: 130/143, one line, the beats made stay
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[stop], err
    assert "Traceback" not in out + err
    assert err.startswith(f"ERROR: Interrupted by {stop.name}") and err.count("\n") == 1, err
    assert services(cell)[0]["report_count"] >= 2


def test_heartbeat_keeps_going_when_a_report_fails(cell):
    """As a Nova service: a report that cannot be written is missed, not fatal."""
    cell.ok("service", "register", "--host", "cmp1")
    proc = cellctl_process(cell, "service", "heartbeat", "--host", "cmp1", "--interval", "0.3",
                           "--count", "8", "--format", "json")
    deadline = time.monotonic() + 30
    while services(cell)[0]["report_count"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    cell.execute(cell.cell_url, "ALTER TABLE services RENAME TO services_away")
    time.sleep(0.7)
    cell.execute(cell.cell_url, "ALTER TABLE services_away RENAME TO services")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    data = json.loads(out)
    assert data["missed"] >= 1
    assert data["reports"] + data["missed"] == 8
    assert services(cell)[0]["report_count"] == data["reports"]
    assert "reports could not be written" in err
    assert "Traceback" not in err


# --- list ----------------------------------------------------------------------------


def test_service_list_up_down_as_novas_db_driver(cell):
    now = utcnow()
    add_hosts(cell.cell_url, ["fresh", "stale", "never", "old-never", "forced", "future",
                              "off"], with_nodes=False, created_at=now)
    seen = {"fresh": now - datetime.timedelta(seconds=20),
            "stale": now - datetime.timedelta(seconds=50),
            "forced": now, "future": now + datetime.timedelta(seconds=20), "off": now}
    for host, when in seen.items():
        cell.execute(cell.cell_url, "UPDATE services SET last_seen_up = :t WHERE host = :h",
                     {"t": when, "h": host})
    cell.execute(cell.cell_url, "UPDATE services SET created_at = :t WHERE host = 'old-never'",
                 {"t": now - datetime.timedelta(seconds=100)})
    cell.execute(cell.cell_url, "UPDATE services SET forced_down = :t WHERE host = 'forced'",
                 {"t": True})
    cell.execute(cell.cell_url, "UPDATE services SET disabled = :t, disabled_reason = 'maint' "
                 "WHERE host = 'off'", {"t": True})
    cell.execute(cell.cell_url, "UPDATE services SET deleted = id WHERE host = 'stale'")
    add_hosts(cell.cell_url, ["stale"], with_nodes=False, created_at=seen["stale"])

    result = cell.run("service", "list", "--format", "json",
                      env={"CELLCTL_SERVICE_DOWN_TIME": "30"})
    assert result.exit_code == 0, result.stderr
    listing = {row["host"]: row for row in json.loads(result.stdout)}
    assert {h: r["state"] for h, r in listing.items()} == {
        "fresh": "up", "stale": "down", "never": "up", "old-never": "down",
        "forced": "down", "future": "up", "off": "up"}
    assert listing["forced"]["forced_down"] is True
    assert (listing["off"]["status"], listing["off"]["disabled_reason"]) == ("disabled", "maint")
    assert listing["fresh"]["status"] == "enabled"
    assert listing["never"]["last_seen_up"] is None
    assert {r["cell_uuid"] for r in listing.values()} == {cell.cell_uuid}
    assert list(listing) == sorted(listing)

    longer = cell.run("service", "list", "--format", "json",
                      env={"CELLCTL_SERVICE_DOWN_TIME": "60"})
    assert {r["host"]: r["state"] for r in json.loads(longer.stdout)}["stale"] == "up"


def test_service_list_all_cells_cell0_and_a_dead_cell(cloud):
    _cell1, cell2, cell3 = setup_cells(cloud, extra_cells=2, cell0=True)
    add_hosts(cloud.cell_urls[0], ["a"], with_nodes=False)
    add_hosts(cloud.cell_urls[1], ["b"], with_nodes=False)
    kill_cell(cloud, cell3)
    result = cloud.run("service", "list")
    assert result.exit_code == 0
    table = [[c.strip() for c in line.split("|")[1:-1]] for line in result.stdout.splitlines()
             if line.startswith("|")]
    assert table[0] == ["Cell Name", "Cell UUID", "Binary", "Host", "Status", "State",
                        "Forced Down", "Last Seen Up", "Disabled Reason"]
    assert [(row[0], row[3], row[5]) for row in table[1:]] == [("cell1", "a", "up"),
                                                                ("cell2", "b", "up")]
    assert CELL0 not in result.stdout  # cell0 has no services
    assert cell3 in result.stderr and "WARNING" in result.stderr
    assert "secretpw" not in result.stderr

    one = cloud.run("service", "list", "--cell_uuid", cell2, "--format", "json")
    assert [r["host"] for r in json.loads(one.stdout)] == ["b"]
    dead = cloud.run("service", "list", "--cell_uuid", cell3, "--format", "json")
    assert (dead.exit_code, json.loads(dead.stdout)) == (0, [])
    assert {"level": "warning", "message": "Some cells could not be reached",
            "unreachable_cells": [cell3]} in [json.loads(x) for x in dead.stderr.splitlines()]


def test_empty_listings_say_they_are_empty(cell):
    """Issue 22: cellctl's own listings say on stderr that nothing was found (stdout keeps
    the empty table); JSON is an empty array with nothing said."""
    for args in (["service", "list"], ["ironic", "owners"], ["ironic", "ring"]):
        result = cell.run(*args)
        assert result.exit_code == 0, (args, result.stderr)
        table = [line for line in result.stdout.splitlines() if line.startswith(("+", "|"))]
        assert len(table) == 4, result.stdout  # border, header, border, border: no row
        said = [line for line in result.stderr.splitlines() if not line.startswith("WARNING")]
        assert len(said) == 1 and said[0].startswith(("No ", "Nothing to list")), result.stderr
        quiet = cell.run("--format", "json", *args)
        assert quiet.exit_code == 0 and "No services" not in quiet.stderr
    listed = cell.run("list_hosts")  # nova-manage's: its empty table, nothing added
    assert (listed.exit_code, listed.stderr) == (0, "")


def test_service_list_unknown_cell_is_1(cell):
    for value in ("nope", UNKNOWN_CELL):
        result = cell.run("service", "list", "--cell_uuid", value)
        assert result.exit_code == 1, value
        assert f"Cell with uuid {value} was not found" in result.stderr
