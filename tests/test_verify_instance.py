"""verify_instance: every exit code with nova-manage's messages, --quiet, JSON, a dead cell."""

from __future__ import annotations

import json
import uuid

import pytest
from instance_helpers import add_instances, dead_cell, mapped_cell


@pytest.fixture
def mapped(cloud_no_pg):
    """A cell with one live, one soft-deleted and one archived instance, all mapped."""
    cloud = cloud_no_pg
    cell = mapped_cell(cloud)
    live, deleted, archived = add_instances(cloud, 3)
    cloud.ok("map_instances", "--cell_uuid", cell)
    cloud.execute(cloud.cell_url, "UPDATE instances SET deleted = id WHERE uuid = :u",
                  {"u": deleted})
    cloud.execute(cloud.cell_url, "DELETE FROM instances WHERE uuid = :u", {"u": archived})
    return cloud, cell, {"live": live, "deleted": deleted, "archived": archived}


def verify(cloud, instance_uuid, *args):
    return cloud.run("verify_instance", "--uuid", instance_uuid, *args)


def test_mapped_live_instance_is_0(mapped):
    cloud, cell, ids = mapped
    result = verify(cloud, ids["live"])
    assert result.exit_code == 0
    assert result.stdout == f"Instance {ids['live']} is in cell: cell1 ({cell})\n"


def test_unmapped_instance_is_1(mapped):
    cloud, _, _ = mapped
    unknown = str(uuid.uuid4())
    result = verify(cloud, unknown)
    assert result.exit_code == 1
    assert result.stdout == (f"Instance {unknown} is not mapped to a cell (upgrade is "
                             "incomplete) or instance does not exist\n")


def test_mapping_without_cell_is_2(mapped):
    cloud, _, _ = mapped
    building = str(uuid.uuid4())
    cloud.execute(cloud.api_url,
                  "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id) "
                  "VALUES (:u, NULL, 'p')", {"u": building})
    result = verify(cloud, building)
    assert result.exit_code == 2
    assert result.stdout == f"Instance {building} is not mapped to a cell\n"


@pytest.mark.parametrize(("which", "code", "second_line"), [
    ("deleted", 3, "Execute `nova-manage db archive_deleted_rows` command to archive this "
                   "deleted instance and remove its instance_mapping."),
    ("archived", 4, "However its instance_mapping remains."),
])
def test_gone_instance_still_mapped_is_3_or_4(mapped, which, code, second_line):
    cloud, _, ids = mapped
    result = verify(cloud, ids[which])
    assert result.exit_code == code
    assert result.stdout.splitlines() == [
        f"The instance with uuid {ids[which]} has been {which}.", second_line]


@pytest.mark.parametrize(("which", "code"),
                         [("live", 0), ("unknown", 1), ("deleted", 3), ("archived", 4)])
def test_quiet_prints_nothing_keeps_the_code(mapped, which, code):
    cloud, _, ids = mapped
    result = verify(cloud, ids.get(which, str(uuid.uuid4())), "--quiet")
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", "")
    json_quiet = verify(cloud, ids.get(which, str(uuid.uuid4())), "--quiet", "--format", "json")
    assert (json_quiet.exit_code, json_quiet.stdout) == (code, "")


def test_json_answer(mapped):
    cloud, cell, ids = mapped
    result = cloud.run("--format", "json", "cell_v2", "verify_instance", "--uuid", ids["deleted"])
    assert result.exit_code == 3
    assert json.loads(result.stdout) == {"uuid": ids["deleted"], "state": "deleted",
                                         "cell_uuid": cell, "cell_name": "cell1",
                                         "exit_code": 3}


def test_unreachable_cell_database_is_255(sqlite_cloud):
    cell = dead_cell(sqlite_cloud)
    instance = str(uuid.uuid4())
    sqlite_cloud.execute(
        sqlite_cloud.api_url,
        "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id) "
        "SELECT :u, id, 'p' FROM cell_mappings WHERE uuid = :c", {"u": instance, "c": cell})
    result = verify(sqlite_cloud, instance)
    assert result.exit_code == 255
    assert len(result.stdout.strip().splitlines()) == 1
    assert "secretpw" not in result.output
