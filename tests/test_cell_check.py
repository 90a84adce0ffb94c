"""``cell check``: stored URLs against this host's config, reachability, cell0, sharing."""

from __future__ import annotations

import json

import pytest
from conftest import RABBITMQ_URL
from hostsupport import DEAD_CELL_URL, setup_cells

CELL0 = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def healthy(cloud):
    """cell0 and cell1 ([database], the in-memory transport), both synced."""
    cloud.ok("api_db", "sync")
    cloud.ok("map_cell0")
    cloud.ok("db", "sync")
    (cell1,) = setup_cells(cloud)
    return cloud, cell1


def check(cloud, *args, env=None):
    result = cloud.run("cell", "check", "--format", "json", "--timeout", "3", *args, env=env)
    data = json.loads(result.stdout)
    return result.exit_code, {(c["cell_uuid"], c["check"]): c for c in data["checks"]}


def test_healthy_cells_pass(healthy):
    cloud, cell1 = healthy
    code, checks = check(cloud)
    assert code == 0, checks
    assert {c["result"] for c in checks.values()} == {"success"}
    assert checks[(cell1, "URLs")]["details"].startswith("the local cell")
    assert (cell1, "database reachable") in checks and (cell1, "queue reachable") in checks
    assert (CELL0, "database reachable") in checks
    table = cloud.run("cell", "check", "--timeout", "3")
    assert table.exit_code == 0 and "Success" in table.stdout


def test_stale_password_is_a_warning_naming_the_part_not_the_secret(healthy):
    cloud, cell1 = healthy
    stale = RABBITMQ_URL.replace("guest:guest@", "guest:oldsecret@")
    cloud.execute(cloud.api_url, "UPDATE cell_mappings SET transport_url = :u WHERE uuid = :c",
                  {"u": stale, "c": cell1})
    code, checks = check(cloud, "--no-connectivity", env={"CELLCTL_TRANSPORT_URL": RABBITMQ_URL})
    assert code == 1
    details = checks[(cell1, "URLs")]["details"]
    assert "(password)" in details and "--from-config" in details
    assert "oldsecret" not in details and ":guest@" not in details
    # The fix it names makes the check pass.
    cloud.run("cell", "ensure", "--name", "cell1", "--from-config",
              env={"CELLCTL_TRANSPORT_URL": RABBITMQ_URL})
    assert check(cloud, "--no-connectivity", env={"CELLCTL_TRANSPORT_URL": RABBITMQ_URL})[0] == 0


def test_stale_url_of_an_unnamed_cell_names_the_real_uuid(healthy):
    """Issue 22 (hints with real values): an unnamed cell has no name for ``cell ensure``;
    the hint is ``update_cell`` with the cell's UUID, and running it makes the check pass."""
    cloud, cell1 = healthy
    stale = RABBITMQ_URL.replace("guest:guest@", "guest:oldsecret@")
    cloud.execute(cloud.api_url, "UPDATE cell_mappings SET transport_url = :u, name = NULL "
                  "WHERE uuid = :c", {"u": stale, "c": cell1})
    env = {"CELLCTL_TRANSPORT_URL": RABBITMQ_URL}
    code, checks = check(cloud, "--no-connectivity", env=env)
    assert code == 1
    details = checks[(cell1, "URLs")]["details"]
    assert f"(cellctl update_cell --cell_uuid {cell1} updates the cell)" in details, details
    assert "<" not in details
    assert cloud.run("update_cell", "--cell_uuid", cell1, env=env).exit_code == 0
    assert check(cloud, "--no-connectivity", env=env)[0] == 0


def test_two_cells_on_one_database_through_a_template(healthy):
    cloud, _cell1 = healthy
    template = "{scheme}://{username}:{password}@{hostname}/{path}"
    if cloud.factory.backend == "sqlite":
        template = "{scheme}:////{path}"  # {path} loses the leading /
    cloud.execute(cloud.api_url,
                  "INSERT INTO cell_mappings (uuid, name, transport_url, database_connection, "
                  "disabled) VALUES ('11111111-2222-3333-4444-555555555555', 'copy', "
                  "'memory:///copy', :t, :f)", {"t": template, "f": False})
    code, checks = check(cloud, "--no-connectivity")
    assert code == 2
    shared = checks[(None, "shared database")]
    assert shared["result"] == "failure"
    assert "cell 'cell1'" in shared["details"] and "cell 'copy'" in shared["details"]


def test_cell0_transport_and_missing_cell0(healthy):
    cloud, _ = healthy
    cloud.execute(cloud.api_url, "UPDATE cell_mappings SET transport_url = 'rabbit://' "
                  "WHERE uuid = :c", {"c": CELL0})
    code, checks = check(cloud, "--no-connectivity")
    assert code == 2 and checks[(CELL0, "cell0 transport")]["result"] == "failure"
    cloud.execute(cloud.api_url, "DELETE FROM cell_mappings WHERE uuid = :c", {"c": CELL0})
    code, checks = check(cloud, "--no-connectivity")
    assert code == 2 and checks[(None, "cell0")]["result"] == "failure"


def test_unreachable_database_and_a_cell_on_the_api_database(healthy):
    cloud, _ = healthy
    cloud.ok("create_cell", "--name", "dead", "--transport-url", "memory:///dead",
             "--database_connection", DEAD_CELL_URL)
    cloud.execute(cloud.api_url,
                  "INSERT INTO cell_mappings (uuid, name, transport_url, database_connection, "
                  "disabled) VALUES ('11111111-2222-3333-4444-555555555555', 'api', "
                  "'memory:///api', :u, :f)", {"u": cloud.api_url, "f": False})
    result = cloud.run("cell", "check", "--format", "json", "--timeout", "2")
    assert result.exit_code == 2
    assert "secretpw" not in result.stdout + result.stderr
    rows = json.loads(result.stdout)["checks"]
    dead = [r for r in rows if r["cell"] and "'dead'" in r["cell"]
            and r["check"] == "database reachable"]
    assert [r["result"] for r in dead] == ["failure"]
    api = [r for r in rows if r["cell_uuid"] == "11111111-2222-3333-4444-555555555555"
           and r["check"] == "URLs"]
    assert [r["result"] for r in api] == ["failure"] and "API database" in api[0]["details"]
