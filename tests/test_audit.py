"""cellctl audit: every kind found on every backend, repaired safely, and nothing written
without --fix."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from auditsupport import every_kind, fingerprint, insert_mappings, real_mappings
from hostsupport import add_hosts, host_mappings, map_host, node_flags, setup_cells
from instance_helpers import add_instances, markers

from cellctl.ops.audit.checks import FIXABLE_KINDS, KINDS


def audit(cloud, *args):
    result = cloud.run("--format", "json", "audit", *args)
    payload = json.loads(result.stdout) if result.stdout.strip() else None
    return result, payload


def found(payload):
    out: dict[str, set] = {}
    for f in payload["findings"]:
        out.setdefault(f["kind"], set()).add((f["cell_uuid"], f["subject"]))
    return out


def test_every_kind_is_found_and_nothing_written(any_cloud):
    scene = every_kind(any_cloud)
    urls = [any_cloud.api_url, *scene.urls]
    before = fingerprint(urls)

    result, payload = audit(any_cloud)

    assert result.exit_code == 1, result.stderr
    assert fingerprint(urls) == before
    assert found(payload) == scene.expected
    assert payload["counts"] == {kind: len(scene.expected[kind]) for kind in KINDS}
    assert payload["fixed"] == {kind: 0 for kind in FIXABLE_KINDS}
    assert payload["unreachable_cells"] == []
    assert payload["exit_code"] == 1
    fixable = {(f["kind"], f["subject"]) for f in payload["findings"] if f["fixable"]}
    assert fixable == {(k, s) for k, subjects in scene.fixable.items() for s in subjects}
    names = {scene.cells[0]: "cell1", scene.cells[1]: "cell2", None: None}
    for finding in payload["findings"]:
        assert set(finding) == {"kind", "cell_uuid", "cell_name", "subject", "detail",
                                "fixable"}
        assert finding["cell_name"] == names[finding["cell_uuid"]]
        assert finding["detail"] and "\n" not in finding["detail"]
    moved = next(f for f in payload["findings"] if f["kind"] == "mapping_in_wrong_cell")
    assert scene.cells[1] in moved["detail"]


def test_fix_repairs_exactly_the_fixable_and_is_idempotent(any_cloud):
    scene = every_kind(any_cloud)
    cell1, cell2 = scene.cells
    refs = scene.refs
    hosts_before = host_mappings(any_cloud)

    result, payload = audit(any_cloud, "--fix")

    # Report-only findings (and the unfixable ones) remain: exit 1.
    assert result.exit_code == 1, result.stderr
    assert payload["fixed"] == {kind: len(scene.fixable.get(kind, ())) for kind in FIXABLE_KINDS}
    by_uuid = {r["instance_uuid"]: r for r in real_mappings(any_cloud)}
    ids = {r["uuid"]: r["id"] for r in any_cloud.api_rows("cell_mappings")}
    assert by_uuid[refs["unmapped"]]["cell_id"] == ids[cell1]
    assert by_uuid[refs["unmapped_deleted"]]["cell_id"] == ids[cell2]
    assert bool(by_uuid[refs["unmapped_deleted"]]["queued_for_delete"]) is True
    assert by_uuid[refs["unmapped"]]["project_id"] == "project-0"
    assert refs["no_project"] not in by_uuid
    assert refs["archived"] not in by_uuid
    assert by_uuid[refs["moved"]]["cell_id"] == ids[cell2]
    assert by_uuid[refs["stuck"]]["cell_id"] is None  # report only
    assert markers(any_cloud) == [refs["unmapped"]]  # report only
    hosts_after = host_mappings(any_cloud)
    assert "ghost" not in hosts_after
    assert hosts_after["ghost-busy"] == cell2  # live instance: kept
    assert hosts_after["lost"] == cell2
    assert {h: c for h, c in hosts_after.items() if h != "lost"} == {
        h: c for h, c in hosts_before.items() if h != "ghost"}

    again, payload2 = audit(any_cloud, "--fix")
    assert again.exit_code == 1
    assert payload2["fixed"] == {kind: 0 for kind in FIXABLE_KINDS}
    assert not [f for f in payload2["findings"] if f["fixable"]]
    assert found(payload2) == {
        "instance_without_mapping": {(cell2, refs["no_project"])},
        "mapping_without_cell": {(None, refs["stuck"])},
        "host_mapping_without_host": {(cell2, "ghost-busy")},
        "host_in_several_cells": {(cell1, "twin")},
        "leftover_marker": {(None, refs["unmapped"])},
    }


def test_clean_cloud_exits_0_and_fixing_it_writes_nothing(any_cloud):
    cell1, cell2 = setup_cells(any_cloud, extra_cells=1)
    url1, url2 = any_cloud.cell_urls
    insert_mappings(any_cloud.api_url, cell1, add_instances(url1, 3))
    insert_mappings(any_cloud.api_url, cell2, add_instances(url2, 2))
    add_hosts(url1, ["a"])
    map_host(any_cloud, "a", cell1)
    urls = [any_cloud.api_url, url1, url2]
    before = fingerprint(urls)

    result, payload = audit(any_cloud, "--fix")

    assert result.exit_code == 0, result.stderr
    assert payload["findings"] == [] and set(payload["counts"].values()) == {0}
    assert fingerprint(urls) == before


def test_kind_cell_and_limit(sqlite_cloud):
    scene = every_kind(sqlite_cloud)
    cell2 = scene.cells[1]

    _, only = audit(sqlite_cloud, "--kind", "host_mapping_without_host",
                    "--kind", "leftover_marker")
    assert set(only["counts"]) == {"host_mapping_without_host", "leftover_marker"}
    assert found(only) == {k: scene.expected[k] for k in only["counts"]}

    result, one_cell = audit(sqlite_cloud, "--cell_uuid", cell2)
    assert result.exit_code == 1
    expected = {k: {(c, s) for c, s in v if c == cell2} for k, v in scene.expected.items()
                if k not in ("mapping_without_cell", "leftover_marker")}
    # A host in several cells is each of its cells' finding.
    expected["host_in_several_cells"] = {(cell2, "twin")}
    assert found(one_cell) == {k: v for k, v in expected.items() if v}
    assert set(one_cell["counts"]) == set(expected)

    result, capped = audit(sqlite_cloud, "--limit", "1")
    assert capped["counts"]["instance_without_mapping"] == 3  # counts stay complete
    assert len([f for f in capped["findings"]
                if f["kind"] == "instance_without_mapping"]) == 1
    assert "3 findings of kind instance_without_mapping: only the first is listed" in result.stderr
    assert "first 1 are" not in result.stderr


def test_table_and_csv(sqlite_cloud):
    scene = every_kind(sqlite_cloud)
    table = sqlite_cloud.run("audit")
    assert table.exit_code == 1
    assert "host_in_several_cells" in table.stdout and "twin" in table.stdout
    assert table.stdout.startswith("11 findings (6 fixable with --fix)\n")
    rows = list(csv.DictReader(io.StringIO(sqlite_cloud.run("--format", "csv",
                                                            "audit").stdout)))
    assert {(r["kind"], r["subject"]) for r in rows} == {
        (k, s) for k, v in scene.expected.items() for _, s in v}
    assert set(rows[0]) == {"kind", "cell_name", "cell_uuid", "subject", "detail", "fixable"}


@pytest.mark.parametrize("args, message", [
    (["--kind", "nonsense"], "Unknown kind 'nonsense'"),
    (["--limit", "0"], "--limit must be a positive integer"),
    (["--limit", "x"], "--limit must be a positive integer"),
    (["--build-timeout", "-1"], "--build-timeout must be a number"),
    (["--cell_uuid", "not-a-uuid"], "not a valid UUID"),
    (["--cell_uuid", "6f1d3c1e-5b1a-4c55-9a53-0f3e9d6c2b11"], "was not found"),
])
def test_bad_input_is_one_line_exit_1_nothing_written(sqlite_cloud, args, message):
    scene = every_kind(sqlite_cloud)
    urls = [sqlite_cloud.api_url, *scene.urls]
    before = fingerprint(urls)
    result = sqlite_cloud.run("audit", "--fix", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert fingerprint(urls) == before


def test_build_timeout(sqlite_cloud):
    scene = every_kind(sqlite_cloud)
    _, payload = audit(sqlite_cloud, "--kind", "mapping_without_cell", "--build-timeout", "30")
    assert found(payload)["mapping_without_cell"] == {(None, scene.refs["stuck"]),
                                                      (None, scene.refs["building"])}
    _, payload = audit(sqlite_cloud, "--kind", "mapping_without_cell",
                       "--build-timeout", str(3 * 3600))
    assert payload["counts"] == {"mapping_without_cell": 0}


def test_node_flags_untouched_by_host_fixes(sqlite_cloud):
    scene = every_kind(sqlite_cloud)
    flags = [node_flags(url) for url in scene.urls]
    audit(sqlite_cloud, "--fix")
    assert [node_flags(url) for url in scene.urls] == flags


def test_scattered_findings_in_big_pages(sqlite_cloud):
    """Pages of thousands where a few rows differ: each one is found, none more."""
    cell1, _cell2 = setup_cells(sqlite_cloud, extra_cells=1)
    url1, url2 = sqlite_cloud.cell_urls
    uuids = add_instances(url1, 12_000)
    lost = set(uuids[7::2399])
    # Orphans interleaved, so that their mapping ids fall in several id ranges.
    orphans = [str(uuid.uuid4()) for _ in range(4)]
    kept = [u for u in uuids if u not in lost]
    for n, orphan in enumerate(orphans):
        kept.insert(n * 3500 + 11, orphan)
    insert_mappings(sqlite_cloud.api_url, cell1, kept)
    moved = add_instances(url2, 3)
    insert_mappings(sqlite_cloud.api_url, cell1, moved)

    result, payload = audit(sqlite_cloud, "--kind", "instance_without_mapping",
                            "--kind", "mapping_in_wrong_cell", "--kind", "mapping_without_instance")

    assert result.exit_code == 1
    assert found(payload) == {"instance_without_mapping": {(cell1, u) for u in lost},
                              "mapping_in_wrong_cell": {(cell1, u) for u in moved},
                              "mapping_without_instance": {(cell1, u) for u in orphans}}
