"""audit --fix next to other writers: real map_instances and discover_hosts processes on the
same databases, and Nova's own writes landing between a finding and its repair (the repair
re-checks under the lock and leaves them alone)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from auditsupport import insert_mappings, real_mappings
from hostsupport import add_hosts, add_node, cellctl_process, host_mappings, map_host, setup_cells
from instance_helpers import add_instances, markers

from cellctl.ops.audit import checks as audit_checks
from cellctl.ops.audit import hosts as audit_hosts
from cellctl.ops.audit.checks import KINDS, Audit, Findings
from cellctl.tables.api import host_mappings as hm
from cellctl.tables.api import instance_mappings as im

INSTANCES = 45_000  # map_instances writes 20,000 per batch, audit reads 5,000 per page
HOSTS = 3000


@pytest.fixture
def cloud(cloud_no_pg):
    return cloud_no_pg


def finish(proc):
    out, err = proc.communicate(timeout=300)
    assert "Traceback" not in out + err, err
    return proc.returncode, out, err


def test_fix_next_to_map_instances_maps_each_instance_once(cloud):
    (cell1,) = setup_cells(cloud)
    # map_instances goes in Nova's order (created_at), audit in id order: made opposite,
    # the two map from both ends and meet, whichever is faster.
    uuids = add_instances(cloud.cell_url, INSTANCES,
                          created_at=list(range(INSTANCES, 0, -1)))
    kinds = ["--kind", "instance_without_mapping", "--kind", "mapping_without_instance",
             "--kind", "mapping_in_wrong_cell"]
    mapper = cellctl_process(cloud, "--format", "json", "map_instances", "--cell_uuid", cell1)
    auditor = cellctl_process(cloud, "--format", "json", "audit", "--fix", *kinds)

    map_code, map_out, _ = finish(mapper)
    audit_code, audit_out, audit_err = finish(auditor)

    assert map_code == 0
    assert audit_code == 0, audit_err
    found = real_mappings(cloud)
    assert len(found) == INSTANCES and {r["instance_uuid"] for r in found} == set(uuids)
    assert {r["cell_id"] for r in found} == {1}
    assert markers(cloud) == []
    # Each mapping was made by exactly one of the two; none was deleted or moved.
    fixed = json.loads(audit_out)["fixed"]
    assert json.loads(map_out)["mapped"] + fixed["instance_without_mapping"] == INSTANCES
    assert fixed["mapping_without_instance"] == fixed["mapping_in_wrong_cell"] == 0


def test_fix_next_to_discover_hosts_maps_each_host_once(cloud):
    """Every host has a node marked mapped (audit's to map) and one not (discover's)."""
    cell1, cell2 = setup_cells(cloud, extra_cells=1)
    hosts = [f"compute-{i:05d}" for i in range(HOSTS)]
    halves = {cell1: hosts[: HOSTS // 2], cell2: hosts[HOSTS // 2:]}
    for url, (_, names) in zip(cloud.cell_urls, halves.items(), strict=True):
        add_hosts(url, names)
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE compute_nodes SET mapped = 1"))
        engine.dispose()
        for name in names[::10]:
            add_node(url, name, hypervisor=f"{name}-2", mapped=0)
    discover = [cellctl_process(cloud, "discover_hosts", "--verbose") for _ in range(2)]
    auditor = cellctl_process(cloud, "--format", "json", "audit", "--fix",
                              "--kind", "node_mapped_without_host_mapping",
                              "--kind", "host_mapping_without_host")

    results = [finish(proc) for proc in discover]
    audit_code, audit_out, audit_err = finish(auditor)

    assert [code for code, _, _ in results] == [0, 0]
    assert audit_code == 0, audit_err
    assert len(cloud.api_rows("host_mappings")) == HOSTS
    by_host = host_mappings(cloud)
    for cell, names in halves.items():
        assert all(by_host[name] == cell for name in names)
    created = sum(out.count("Creating host mapping") for _, out, _ in results)
    fixed = json.loads(audit_out)["fixed"]
    assert created + fixed["node_mapped_without_host_mapping"] == HOSTS
    assert fixed["host_mapping_without_host"] == 0  # nothing discover made was undone


# --- Nova writing between a finding and its repair ---------------------------------


@pytest.fixture
def live_audit(cloud, monkeypatch) -> Iterator[Audit]:
    """An Audit with --fix over ``cloud``'s two cells, for driving single repairs."""
    from cellctl.cells.refs import cell_database, select_cells
    from cellctl.clock import utcnow
    from cellctl.db import Databases
    from cellctl.result import Result
    from cellctl.settings import resolve

    cloud.cells = setup_cells(cloud, extra_cells=1)
    for key, value in cloud.env.items():
        monkeypatch.setenv(key, value)
    dbs = Databases(resolve(config_files=(), api_database_connection=cloud.api_url))
    with dbs.api.connect() as conn:
        cells = select_cells(conn, Result(), None, not_found_code=1) or []
    engines = {cell.id: cell_database(dbs, cell) for cell in cells}
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield Audit(dbs.api, cells, engines, None, Findings(KINDS, 1000, True), pool,
                    utcnow(), 3600)
    dbs.dispose()


def api_rows(cloud, table, where):
    engine = sa.create_engine(cloud.api_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(table).where(where)).all()
    finally:
        engine.dispose()


def test_host_that_came_back_keeps_its_mapping(cloud, live_audit):
    cell1 = live_audit.cells[0]
    map_host(cloud, "ghost", cell1.uuid)
    map_host(cloud, "ghost2", cell1.uuid)
    stale = api_rows(cloud, hm, hm.c.host.in_(["ghost", "ghost2"]))
    add_hosts(cloud.cell_url, ["ghost"])  # nova-compute started again, after the finding

    audit_hosts._delete_host_mappings(live_audit, cell1, stale)

    assert set(host_mappings(cloud)) == {"ghost"}
    assert live_audit.found.fixed["host_mapping_without_host"] == 1
    assert live_audit.found.vanished["host_mapping_without_host"] == 1


def test_host_that_got_an_instance_keeps_its_mapping(cloud, live_audit):
    cell1 = live_audit.cells[0]
    map_host(cloud, "ghost", cell1.uuid)
    stale = api_rows(cloud, hm, hm.c.host == "ghost")
    add_instances(cloud.cell_url, 1, host="ghost")

    audit_hosts._delete_host_mappings(live_audit, cell1, stale)

    assert set(host_mappings(cloud)) == {"ghost"}
    assert live_audit.found.fixed["host_mapping_without_host"] == 0


def test_orphan_whose_instance_turned_up_is_kept(cloud, live_audit):
    cell1 = live_audit.cells[0]
    orphan, other = str(uuid.uuid4()), str(uuid.uuid4())
    insert_mappings(cloud.api_url, cell1.uuid, [orphan, other])
    stale = api_rows(cloud, im, im.c.instance_uuid.in_([orphan, other]))
    add_instances(cloud.cell_urls[1], 1, uuid=orphan)  # written after the finding

    audit_checks._repair_mappings(live_audit, stale, [])

    assert {r["instance_uuid"] for r in real_mappings(cloud)} == {orphan}
    assert live_audit.found.fixed["mapping_without_instance"] == 1


def test_mapping_nova_moved_meanwhile_is_not_moved_again(cloud, live_audit):
    cell1, cell2 = live_audit.cells
    (moved,) = add_instances(cloud.cell_urls[1], 1)
    insert_mappings(cloud.api_url, cell1.uuid, [moved])
    stale = api_rows(cloud, im, im.c.instance_uuid == moved)
    # Nova finishes the move itself (mapping to cell2), then moves it on, back to cell1.
    add_instances(cloud.cell_url, 1, uuid=moved)
    cloud.execute(cloud.cell_urls[1], "DELETE FROM instances WHERE uuid = :u", {"u": moved})

    audit_checks._repair_mappings(live_audit, [], [(stale[0], cell2.id)])

    (row,) = real_mappings(cloud)
    assert row["cell_id"] == cell1.id
    assert live_audit.found.fixed["mapping_in_wrong_cell"] == 0


def test_instance_archived_meanwhile_is_not_mapped(cloud, live_audit):
    cell1 = live_audit.cells[0]
    kept, archived = add_instances(cloud.cell_url, 2)
    cloud.execute(cloud.cell_url, "DELETE FROM instances WHERE uuid = :u", {"u": archived})

    audit_checks._map_instances(live_audit, cell1, [kept, archived])

    assert {r["instance_uuid"] for r in real_mappings(cloud)} == {kept}
    assert live_audit.found.fixed["instance_without_mapping"] == 1
