"""Cells by name: ``--cell NAME_OR_UUID`` beside ``--cell_uuid``, on every backend."""

from __future__ import annotations

import json

import pytest
from hostsupport import UNKNOWN_CELL, add_hosts, host_mappings, setup_cells


def rename(cloud, flag, cell, name):
    """update_cell with the cell's own URLs: without them, as nova-manage, it would copy
    the configuration's URLs into the cell (and find them taken by cell1)."""
    by = {**{r["uuid"]: r for r in cloud.api_rows("cell_mappings")},
          **{r["name"]: r for r in cloud.api_rows("cell_mappings")}}
    row = by[cell]
    return cloud.ok("update_cell", flag, cell, "--name", name,
                    "--transport-url", row["transport_url"],
                    "--database_connection", row["database_connection"])


@pytest.fixture
def named(cloud):
    """cell1 ([database], hosts h1 h2) and cell10, whose name starts with cell1's."""
    cell1, cell10 = setup_cells(cloud, extra_cells=1)
    rename(cloud, "--cell_uuid", cell10, "cell10")
    add_hosts(cloud.cell_url, ["h1", "h2"])
    return cloud, cell1, cell10


def test_discover_and_list_by_name_pick_exactly_that_cell(named):
    cloud, cell1, _cell10 = named
    cloud.ok("discover_hosts", "--cell", "cell1")
    assert host_mappings(cloud) == {"h1": cell1, "h2": cell1}
    listed = json.loads(cloud.ok("list_hosts", "--cell", "cell10", "--format", "json").stdout)
    assert listed == []  # "cell1" is no prefix match of cell10, nor the reverse
    listed = json.loads(cloud.ok("list_hosts", "--cell", "cell1", "--format", "json").stdout)
    assert [row["hostname"] for row in listed] == ["h1", "h2"]


def test_a_uuid_given_to_cell_still_means_that_uuid(named):
    cloud, cell1, cell10 = named
    rename(cloud, "--cell", cell10, "renamed")
    names = {r["uuid"]: r["name"] for r in cloud.api_rows("cell_mappings")}
    assert names == {cell1: "cell1", cell10: "renamed"}


def test_delete_host_and_update_cell_by_name(named):
    cloud, cell1, _ = named
    cloud.ok("discover_hosts")
    cloud.ok("delete_host", "--cell", "cell1", "--host", "h1")
    assert host_mappings(cloud) == {"h2": cell1}
    cloud.ok("update_cell", "--cell", "cell1", "--disable")
    disabled = {r["name"]: bool(r["disabled"]) for r in cloud.api_rows("cell_mappings")}
    assert disabled == {"cell1": True, "cell10": False}


def test_unknown_name_is_the_commands_not_found_code(named):
    cloud, _, _ = named
    for args, code in [(("update_cell", "--name", "x"), 1), (("delete_cell",), 1),
                       (("list_hosts",), 1), (("delete_host", "--host", "h1"), 1),
                       (("discover_hosts",), 255), (("map_instances",), 255)]:
        # nova-manage's commands say it where nova-manage does (stdout); discover_hosts
        # and map_instances crash on an unknown cell in nova-manage: 255.
        result = cloud.run(*args, "--cell", "nosuch")
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        said = result.stdout + result.stderr
        assert ("nosuch was not found" if code == 1 else "Cell nosuch has no mapping") in said
    # Names are exact: not a prefix, not another case.
    assert cloud.run("list_hosts", "--cell", "cell").exit_code == 1
    assert cloud.run("list_hosts", "--cell", "CELL1").exit_code == 1
    # A well-formed UUID no cell has keeps the UUID's wording.
    result = cloud.run("list_hosts", "--cell", UNKNOWN_CELL)
    assert (result.exit_code, result.stdout.strip()) == (
        1, f"Cell with uuid {UNKNOWN_CELL} was not found.")


def test_ambiguous_name_exits_9_naming_both(named):
    cloud, cell1, cell10 = named
    rename(cloud, "--cell_uuid", cell10, "cell1")
    for args in [("update_cell", "--disable"), ("delete_cell",), ("list_hosts",),
                 ("delete_host", "--host", "h1"), ("discover_hosts",), ("map_instances",),
                 ("service", "list"), ("audit",)]:
        result = cloud.run(*args, "--cell", "cell1")
        assert result.exit_code == 9, (args, result.stdout, result.stderr)
        (line,) = (result.stdout + result.stderr).strip().splitlines()
        assert cell1 in line and cell10 in line and "ambiguous" in line
    assert len(cloud.api_rows("cell_mappings")) == 2  # nothing deleted
    assert not any(r["disabled"] for r in cloud.api_rows("cell_mappings"))


def test_cell_and_cell_uuid_together_or_neither_are_usage_errors(named):
    cloud, cell1, _ = named
    both = cloud.run("delete_cell", "--cell", "cell1", "--cell_uuid", cell1)
    assert both.exit_code == 2 and "not both" in both.stderr
    neither = cloud.run("delete_cell")
    assert neither.exit_code == 2 and "Missing option '--cell_uuid'" in neither.stderr
    assert len(cloud.api_rows("cell_mappings")) == 2
