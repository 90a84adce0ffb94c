"""``delete_host``/``delete_cell --dry-run`` explain; a refusal's JSON carries the reasons,
and without cellctl's flags nova-manage's stdout is unchanged."""

from __future__ import annotations

import json

from hostsupport import add_hosts, host_mappings, node_flags, setup_cells
from instance_helpers import add_instances


def seeded(cloud):
    (cell1,) = setup_cells(cloud)
    add_hosts(cloud.cell_url, ["busy", "idle"])
    cloud.ok("discover_hosts")
    live = add_instances(cloud, 2, host="busy")
    add_instances(cloud, 3, host="busy", deleted=True)
    return cell1, live


def test_delete_host_dry_run_explains_and_writes_nothing(cloud):
    cell1, live = seeded(cloud)
    before = (host_mappings(cloud), node_flags(cloud.cell_url))
    busy = cloud.run("delete_host", "--cell", "cell1", "--host", "busy", "--dry-run")
    assert busy.exit_code == 4, busy.stderr  # the code the delete would have
    assert "Instances on busy: 2 live, 3 deleted but not archived." in busy.stdout
    assert live[0] in busy.stdout and "openstack server migrate" in busy.stdout
    assert "nova-compute on busy (id " in busy.stdout
    idle = cloud.run("delete_host", "--cell_uuid", cell1, "--host", "idle", "--dry-run",
                     "--format", "json")
    assert idle.exit_code == 0
    data = json.loads(idle.stdout)
    assert (data["deleted"], data["dry_run"], data["live_instances"]) == (False, True, 0)
    assert [s["host"] for s in data["services"]] == ["idle"]
    assert any("discover_hosts maps the host again" in r for r in data["reasons"])
    assert (host_mappings(cloud), node_flags(cloud.cell_url)) == before


def test_a_refusal_keeps_stdout_and_gives_reasons_in_json(cloud):
    cell1, live = seeded(cloud)
    plain = cloud.run("cell_v2", "delete_host", "--cell_uuid", cell1, "--host", "busy")
    # nova-manage's one line, on stdout where nova-manage prints it; nothing more.
    assert (plain.exit_code, plain.stdout) == (4, "There are instances on the host busy.\n")
    assert plain.stderr == ""
    as_json = cloud.run("delete_host", "--cell_uuid", cell1, "--host", "busy",
                        "--format", "json")
    data = json.loads(as_json.stdout)
    assert (as_json.exit_code, data["exit_code"], data["live_instances"]) == (4, 4, 2)
    assert data["live_instance_uuids"] == live and data["deleted_instances"] == 3
    assert data["reasons"][0].startswith("Move or delete the 2 live instance(s) on busy")
    elsewhere = json.loads(cloud.run("delete_host", "--cell_uuid", cell1, "--host", "nobody",
                                     "--format", "json").stdout)
    assert elsewhere["reasons"] == ["The host nobody has no host mapping."]
    assert set(host_mappings(cloud)) == {"busy", "idle"}


def test_delete_cell_dry_run_and_refusal(cloud):
    cell1, _ = seeded(cloud)
    dry = cloud.run("delete_cell", "--cell", "cell1", "--dry-run")
    assert dry.exit_code == 2  # hosts mapped, no --force
    assert "2 mapped host(s) (busy, idle)" in dry.stdout
    assert "Instances in cell 'cell1'" in dry.stdout and "2 live, 3 deleted" in dry.stdout
    assert "What to run first:" in dry.stdout
    forced = cloud.run("delete_cell", "--cell", "cell1", "--dry-run", "--force",
                       "--format", "json")
    assert forced.exit_code == 0  # no instance mappings yet: --force would delete it
    assert json.loads(forced.stdout)["hosts"] == ["busy", "idle"]
    plain = cloud.run("cell_v2", "delete_cell", "--cell_uuid", cell1)
    assert (plain.exit_code, plain.stdout) == (
        2, f"There are existing hosts mapped to cell with uuid {cell1}.\n")
    refused = json.loads(cloud.run("delete_cell", "--cell_uuid", cell1, "--format",
                                   "json").stdout)
    assert refused["deleted"] is False and refused["live_instances"] == 2
    assert len(cloud.api_rows("cell_mappings")) == 1 and len(host_mappings(cloud)) == 2
