"""Instance mappings side by side with nova-manage 34 on databases Nova built itself:
map_instances (--max-count, --reset, resuming each other's marker) and verify_instance.
See tests/nova_support.py for how a step is compared."""

from __future__ import annotations

import pytest
from nova_support import CELL0_UUID, seed_uuid

pytestmark = [pytest.mark.nova, pytest.mark.mysql]

MARKER = "INSTANCE_MIGRATION_MARKER"


def cell_with_instances(pair):
    """cell1 with 7 instances, created two a day (the id breaks ties): #2 deleted, #3 in
    restorable soft-delete, #4 hidden (never mapped), #5 already mapped.

    Documented difference: nova-manage maps deleted instances with queued_for_delete
    false; cellctl sets it as Nova's own populate_queued_for_delete migration does
    (deleted or soft-deleted). Tests compare the rest and check that column with
    ``queued_for_delete_as_documented``.
    """
    cell = pair.add_cell("cell1", "cell1")
    specs = [{"created_at": f"2025-01-0{1 + i // 2} 10:00:00", "project_id": f"p{i % 3}",
              "user_id": f"u{i}"} for i in range(7)]
    specs[2]["deleted"] = True
    specs[3]["vm_state"] = "soft-delete"
    specs[4]["hidden"] = 1
    uuids = pair.add_instances("cell1", specs)
    pair.map_instance(uuids[5], cell, project="p2", user="u5")
    pair.ignored_columns["api.instance_mappings"] = {"queued_for_delete"}
    return cell, uuids


def queued_for_delete_as_documented(pair, mapped_by_cellctl):
    """Of the (soft-)deleted instances #2 and #3, those cellctl mapped are queued for delete."""
    for side, expected in ((pair.nova, set()), (pair.ours, set(mapped_by_cellctl))):
        queued = {m["instance_uuid"] for m in side.rows("api", "instance_mappings")
                  if m["queued_for_delete"]}
        assert queued == expected, side.name


def markers(side):
    return [m["instance_uuid"] for m in side.rows("api", "instance_mappings")
            if m["project_id"] == MARKER]


def test_map_instances_in_batches(side_by_side):
    pair = side_by_side
    cell, uuids = cell_with_instances(pair)
    map_cell = ("cell_v2", "map_instances", "--cell_uuid", cell)

    pair.step(*map_cell, "--max-count", "2", code=1)
    assert markers(pair.ours) == [uuids[1].replace("-", " ")]
    pair.step(*map_cell, "--max-count", "2", code=1)
    pair.step(*map_cell, "--max-count", "3", "--reset", code=1)
    pair.step(*map_cell, code=0)
    assert markers(pair.ours) == []
    mapped = {m["instance_uuid"]: m for m in pair.ours.rows("api", "instance_mappings")}
    assert sorted(mapped) == sorted(u for i, u in enumerate(uuids) if i != 4)
    pair.step(*map_cell, code=0)
    queued_for_delete_as_documented(pair, [uuids[2], uuids[3]])


def test_map_instances_bad_max_count(side_by_side):
    pair = side_by_side
    cell, _ = cell_with_instances(pair)
    nova, ours = pair.step("cell_v2", "map_instances", "--cell_uuid", cell, "--max-count",
                           "0", code=127)
    assert nova.lines == ["Must supply a positive value for max-count"]
    assert "Must supply a positive value for max-count" in ours.stdout  # as nova-manage


def test_map_instances_exact_multiple_and_unknown_cell(side_by_side):
    """Documented differences: an exact multiple of --max-count ends with 0 (nova-manage
    says 1 and leaves a marker for an empty run); an unknown cell is 255 in both, with
    nova-manage's crash prefix and the exception's line."""
    pair = side_by_side
    cell = pair.add_cell("cell1", "cell1")
    pair.add_instances("cell1", [{}, {}, {}])
    pair.step("cell_v2", "map_instances", "--cell_uuid", cell, "--max-count", "3",
              nova_code=1, cellctl_code=0, except_tables=["api.instance_mappings"])
    assert len(markers(pair.nova)) == 1 and markers(pair.ours) == []
    # nova-manage's next run finds nothing after its marker and removes it: same state.
    pair.step("cell_v2", "map_instances", "--cell_uuid", cell, "--max-count", "3", code=0)
    assert markers(pair.nova) == []
    nova, ours = pair.step("cell_v2", "map_instances", "--cell_uuid", seed_uuid("nowhere"),
                           code=255)
    assert "has no mapping" in nova.stdout and "has no mapping" in ours.stdout


@pytest.mark.parametrize("first", ["nova-manage", "cellctl"])
def test_map_instances_resumes_the_other_tools_marker(side_by_side, first):
    """One tool stops at --max-count, the other finishes from its marker. The reference
    copy is nova-manage doing both runs; the copies must end (and pause) identically."""
    pair = side_by_side
    cell, uuids = cell_with_instances(pair)
    args = ("cell_v2", "map_instances", "--cell_uuid", cell)
    second = "cellctl" if first == "nova-manage" else "nova-manage"

    def run_on_ours(tool, *extra):
        if tool == "cellctl":
            return pair.cellctl(*args, *extra)
        return pair.nova_manage(*args, *extra, side=pair.ours)

    reference = pair.nova_manage(*args, "--max-count", "3")
    ours = run_on_ours(first, "--max-count", "3")
    assert (reference.code, ours.code) == (1, 1), (reference, ours)
    pair.assert_same_state(f"{first} --max-count 3")
    assert markers(pair.ours) == [uuids[2].replace("-", " ")]

    reference = pair.nova_manage(*args)
    ours = run_on_ours(second)
    assert (reference.code, ours.code) == (0, 0), (reference, ours)
    pair.assert_same_state(f"{second} resuming")
    assert markers(pair.ours) == []
    assert len(pair.ours.rows("api", "instance_mappings")) == 6
    # cellctl mapped the first three (#0-#2) or the rest (#3, #5 already mapped, #6)
    queued_for_delete_as_documented(pair, [uuids[2] if first == "cellctl" else uuids[3]])


def test_verify_instance(side_by_side):
    pair = side_by_side
    pair.add_cell("cell0", None, cell_uuid=CELL0_UUID)
    cell = pair.add_cell("cell1", "cell1")
    live, deleted = pair.add_instances("cell1", [{}, {"deleted": True}])
    archived, building, unmapped = (seed_uuid(n) for n in ("archived", "building", "unmapped"))
    for instance in (live, deleted, archived):
        pair.map_instance(instance, cell)
    pair.map_instance(building, None)

    for instance, code in ((live, 0), (unmapped, 1), (building, 2), (deleted, 3),
                           (archived, 4)):
        nova, ours = pair.step("cell_v2", "verify_instance", "--uuid", instance, code=code)
        assert nova.lines == (ours.stdout + ours.stderr).replace("ERROR: ", "").splitlines()
    nova, ours = pair.step("cell_v2", "verify_instance", "--uuid", deleted, "--quiet", code=3)
    assert (nova.stdout, ours.stdout, ours.stderr) == ("", "", "")
