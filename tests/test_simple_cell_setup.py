"""simple_cell_setup: facts scenarios 6-11 on SQLite and MariaDB."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from hostsupport import DEAD_CELL_URL
from instance_helpers import add_instances, instance_mappings

from cellctl import migrate

CELL0 = "00000000-0000-0000-0000-000000000000"
TRANSPORT = "rabbit://guest:devstack@127.0.0.1:9999/"


def with_hosts(cloud, *hosts):
    cloud.ok("api_db", "sync")
    cloud.ok("db", "sync")
    for host in hosts:
        cloud.ok("service", "register", "--host", host)
    return cloud


def cells(cloud):
    return {r["uuid"]: r for r in cloud.api_rows("cell_mappings")}


def cell0_schema(cloud):
    (row,) = [r for r in cloud.api_rows("cell_mappings") if r["uuid"] == CELL0]
    engine = sa.create_engine(row["database_connection"])
    try:
        return migrate.schema_state(engine, "cell")
    finally:
        engine.dispose()


def test_sets_up_cell0_the_cell_its_hosts_and_instances(cloud_no_pg):
    """Scenario 8: cell0 mapped and its schema synced, [database] mapped as a new cell
    (no name, the transport URL given) with its three hosts, and its instances mapped."""
    cloud = with_hosts(cloud_no_pg, "host0", "host1", "host2")
    instances = add_instances(cloud, 5)
    add_instances(cloud, 1, hidden=True)

    result = cloud.run("simple_cell_setup", "--transport-url", TRANSPORT)

    assert result.exit_code == 0, result.output
    found = cells(cloud)
    assert found[CELL0]["transport_url"] == "none:///"
    assert cell0_schema(cloud).is_current
    (cell,) = [c for u, c in found.items() if u != CELL0]
    assert cell["name"] is None
    assert cell["transport_url"] == TRANSPORT
    assert cell["database_connection"] == cloud.cell_url
    assert {r["host"]: r["cell_id"] for r in cloud.api_rows("host_mappings")} == {
        "host0": cell["id"], "host1": cell["id"], "host2": cell["id"]}
    assert set(instance_mappings(cloud)) == set(instances)
    assert {m["cell_id"] for m in instance_mappings(cloud).values()} == {cell["id"]}


def test_second_run_says_so_and_changes_nothing(cloud_no_pg):
    """Scenario 9."""
    cloud = with_hosts(cloud_no_pg, "host0", "host1")
    add_instances(cloud, 3)
    cloud.ok("simple_cell_setup", "--transport-url", TRANSPORT)
    before = {t: cloud.api_rows(t) for t in ("cell_mappings", "host_mappings",
                                             "instance_mappings")}

    result = cloud.run("simple_cell_setup", "--transport-url", TRANSPORT)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["Cell0 is already setup",
                                          "All hosts are already mapped to cell(s)."]
    assert {t: cloud.api_rows(t) for t in before} == before


def test_new_instances_are_mapped_on_a_later_run(sqlite_cloud):
    cloud = with_hosts(sqlite_cloud, "host0")
    first = add_instances(cloud, 2)
    cloud.ok("simple_cell_setup")
    later = add_instances(cloud, 2)
    assert cloud.run("simple_cell_setup").exit_code == 0
    assert set(instance_mappings(cloud)) == {*first, *later}


def test_cell0_schema_failure_is_reported_and_setup_goes_on(cloud_no_pg):
    """Scenario 10: cell0's database cannot be used; everything else is still set up."""
    cloud = with_hosts(cloud_no_pg, "host0")
    instances = add_instances(cloud, 2)
    cloud.ok("map_cell0", "--database_connection",
             "mysql+pymysql://nova:secretpw@127.0.0.1:1/nova_cell0")

    result = cloud.run("simple_cell_setup", "--transport-url", TRANSPORT)

    assert result.exit_code == 0, result.output
    assert "Unable to sync cell0 schema:" in result.stdout
    assert "secretpw" not in result.output
    assert len(cells(cloud)) == 2
    assert [r["host"] for r in cloud.api_rows("host_mappings")] == ["host0"]
    assert set(instance_mappings(cloud)) == set(instances)


def test_no_compute_hosts_is_1_after_cell0(cloud_no_pg):
    """Scenario 11: cell0 is created, no cell, exit 1."""
    cloud = with_hosts(cloud_no_pg)
    add_instances(cloud, 2)

    result = cloud.run("simple_cell_setup", "--transport-url", TRANSPORT)

    assert result.exit_code == 1
    assert result.stdout == "No hosts found to map to cell, exiting.\n"
    assert list(cells(cloud)) == [CELL0]
    assert instance_mappings(cloud) == {}


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [([], {"CELLCTL_TRANSPORT_URL": ""}, "Must specify --transport-url"),
     (["--transport-url", "not-a-url"], {}, "Invalid transport URL: No scheme specified")],
)
def test_missing_or_invalid_transport_is_1_and_writes_nothing(sqlite_cloud, args, env,
                                                               message):
    """Scenarios 6 and 7."""
    cloud = with_hosts(sqlite_cloud, "host0")
    result = cloud.run("simple_cell_setup", *args, env=env)
    assert result.exit_code == 1
    assert message in result.stdout
    assert cells(cloud) == {}
    assert cloud.api_rows("host_mappings") == []


def test_configured_transport_is_used_and_json_result(sqlite_cloud):
    cloud = with_hosts(sqlite_cloud, "host0")
    add_instances(cloud, 3)
    result = cloud.run("--format", "json", "cell_v2", "simple_cell_setup")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cell0_created"] is True
    assert data["cell_created"] is True
    assert data["hosts_mapped"] == ["host0"]
    assert data["instances_mapped"] == 3
    assert "--transport-url not provided" in result.stderr
    assert cells(cloud)[data["cell_uuid"]]["transport_url"] == cloud.transport_url


def test_unreachable_cell_database_is_255(sqlite_cloud):
    sqlite_cloud.ok("api_db", "sync")
    result = sqlite_cloud.run("simple_cell_setup",
                              env={"CELLCTL_DATABASE_CONNECTION": DEAD_CELL_URL})
    assert result.exit_code == 255
    assert result.stdout.startswith("Cannot use cell database")
    assert len(result.stdout.splitlines()) == 1
    assert "secretpw" not in result.output
    assert "Traceback" not in result.output
    assert list(cells(sqlite_cloud)) == [CELL0]
