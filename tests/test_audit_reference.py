"""audit's merge walks against a slow, obviously correct reference: a randomized cloud with
every kind of finding planted (unmapped, orphaned, misplaced, hidden copies, soft-deleted
rows, instances in several cells, upper-case UUIDs; mappings without a cell young and old,
a marker; hosts mapped nowhere, to the wrong cell, in several cells, with deleted nodes
and services, other binaries, names spelled in other cases and with characters that sort
differently by collation), the audit's answer equal to Python sets over full reads of
every table, before and after --fix."""

from __future__ import annotations

import datetime
import json
import os
import random
import uuid as uuidlib

import sqlalchemy as sa
from auditsupport import insert_mappings
from hostsupport import setup_cells
from instance_helpers import MARKER, add_instances, put_marker

from cellctl.clock import utcnow
from cellctl.tables.api import instance_mappings
from cellctl.tables.cell import compute_nodes, services
from cellctl.tables.rows import compute_node_row, service_row

INSTANCE_KINDS = ("instance_without_mapping", "mapping_without_instance",
                  "mapping_in_wrong_cell")
HOST_KINDS = ("host_mapping_without_host", "node_mapped_without_host_mapping",
              "host_in_several_cells")
KINDS = (*INSTANCE_KINDS, "mapping_without_cell", *HOST_KINDS, "leftover_marker")
BUILD_TIMEOUT = datetime.timedelta(hours=1)


def rows(url, query):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query) if isinstance(query, str) else query).all()
    finally:
        engine.dispose()


def reference(cloud, cells):
    """kind -> {(mapped or holding cell, subject)}, from full reads and Python sets."""
    ids = {r.uuid: r.id for r in rows(cloud.api_url, "SELECT uuid, id FROM cell_mappings")}
    by_id = {ids[c]: c for c in cells}
    held: dict[str, dict[int, bool]] = {}  # folded uuid -> cell id -> lives there
    stored: list[tuple[int, str, bool]] = []
    for cell, url in zip(cells, cloud.cell_urls, strict=True):
        for r in rows(url, "SELECT uuid, deleted, hidden FROM instances"):
            held.setdefault(r.uuid.lower(), {})[ids[cell]] = r.deleted == 0 and not r.hidden
            stored.append((ids[cell], r.uuid, bool(r.hidden)))
    mappings = {r.instance_uuid.lower(): r for r in rows(
        cloud.api_url, "SELECT instance_uuid, cell_id FROM instance_mappings")}
    expected: dict[str, set] = {kind: set() for kind in KINDS}
    _hosts_reference(cloud, cells, ids, expected)
    cutoff = utcnow() - BUILD_TIMEOUT
    im = instance_mappings.c
    for r in rows(cloud.api_url, sa.select(im.instance_uuid, im.project_id, im.created_at)
                  .where(im.cell_id.is_(None))):
        if r.project_id == MARKER:
            expected["leftover_marker"].add((None, r.instance_uuid.replace(" ", "-")))
        elif r.created_at < cutoff:
            expected["mapping_without_cell"].add((None, r.instance_uuid))
    for cell_id, uuid, hidden in stored:
        if not hidden and uuid.lower() not in mappings:
            expected["instance_without_mapping"].add((by_id[cell_id], uuid))
    for key, m in mappings.items():
        if m.cell_id is None:
            continue
        cells_with = held.get(key, {})
        living = {c for c, lives in cells_with.items() if lives}
        if m.cell_id in living:
            continue
        if living:
            expected["mapping_in_wrong_cell"].add((by_id[m.cell_id], m.instance_uuid))
        elif not cells_with:
            expected["mapping_without_instance"].add((by_id[m.cell_id], m.instance_uuid))
    return expected


def _hosts_reference(cloud, cells, ids, expected):
    """The host kinds, from full reads: host names compared as the API database compares
    them (folded under MySQL's case-insensitive collation, exactly elsewhere)."""
    key = str.lower if cloud.api_url.startswith("mysql") else str
    by_id = {ids[c]: c for c in cells}
    live: dict[str, dict[int, str]] = {}  # folded host -> cell id -> spelling there
    marked: set[tuple[int, str]] = set()  # (cell id, host) of live nodes marked mapped
    for cell, url in zip(cells, cloud.cell_urls, strict=True):
        for r in rows(url, "SELECT host, mapped FROM compute_nodes "
                           "WHERE deleted = 0 AND host IS NOT NULL"):
            live.setdefault(key(r.host), {})[ids[cell]] = r.host
            if (r.mapped or 0) >= 1:
                marked.add((ids[cell], r.host))
        for r in rows(url, sa.select(services.c.host).where(
                services.c.deleted == 0, services.c.host.is_not(None),
                services.c.binary == "nova-compute")):
            live.setdefault(key(r.host), {}).setdefault(ids[cell], r.host)
    mapped = rows(cloud.api_url, "SELECT host, cell_id FROM host_mappings")
    folded_mapped = {key(m.host) for m in mapped}
    for m in mapped:
        if m.cell_id in by_id and m.cell_id not in live.get(key(m.host), {}):
            expected["host_mapping_without_host"].add((by_id[m.cell_id], m.host))
    for cell_id, host in marked:
        if key(host) not in folded_mapped:
            expected["node_mapped_without_host_mapping"].add((by_id[cell_id], host))
    for holders in live.values():
        if len(holders) > 1:
            first = min(holders)
            expected["host_in_several_cells"].add((by_id[first], holders[first]))


def audited(cloud, *args):
    result = cloud.run("--format", "json", "audit", "--limit", "100000",
                       "--build-timeout", str(int(BUILD_TIMEOUT.total_seconds())), *args)
    payload = json.loads(result.stdout)
    out: dict[str, set] = {kind: set() for kind in KINDS}
    for f in payload["findings"]:
        out[f["kind"]].add((f["cell_uuid"], f["subject"]))
    return result, payload, out


def plant(cloud, cells, rng, count):
    urls = cloud.cell_urls
    for _ in range(count):
        uuid = str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
        holders = rng.sample(range(len(cells)), 2 if rng.random() < 0.15 else 1)
        spelled = uuid.upper() if rng.random() < 0.05 else uuid
        for n in holders:
            add_instances(urls[n], 1, uuid=spelled, hidden=rng.random() < 0.1,
                          deleted=rng.random() < 0.1)
        roll = rng.random()
        if roll < 0.7:
            insert_mappings(cloud.api_url, cells[holders[0]], [uuid])
        elif roll < 0.85:
            insert_mappings(cloud.api_url, cells[1 - holders[0]], [uuid])
        # else: no mapping
    orphans = [str(uuidlib.UUID(int=rng.getrandbits(128), version=4))
               for _ in range(count // 10)]
    for orphan in orphans:
        insert_mappings(cloud.api_url, rng.choice(cells), [orphan])
    for n in range(count // 10):  # mappings without a cell: stuck builds and young ones
        age = datetime.timedelta(hours=2) if n % 2 else datetime.timedelta(minutes=5)
        insert_mappings(cloud.api_url, None, [str(uuidlib.UUID(int=rng.getrandbits(128)))],
                        created_at=utcnow() - age)
    put_marker(cloud, str(uuidlib.UUID(int=rng.getrandbits(128), version=4)))
    plant_hosts(cloud, cells, rng, count // 2)


def _spelling(rng, host):
    roll = rng.random()
    return host.upper() if roll < 0.15 else host.capitalize() if roll < 0.3 else host


def plant_hosts(cloud, cells, rng, count):
    """``count`` host names (unique when folded; '_', '-', '.', digits and letters, which
    sort differently in MySQL's case-insensitive collations and in binary ones), each in
    some cells as a live or deleted node (marked mapped or not) and a live or deleted
    nova-compute service, spelled per database in some case; most mapped, some to a cell
    that lacks them; a few with only another binary's service."""
    alphabet = "abcxyz_-.09"
    names: dict[str, str] = {}
    while len(names) < count:
        name = "h" + "".join(rng.choice(alphabet) for _ in range(rng.randrange(2, 7)))
        names.setdefault(name.lower(), name)
    now = utcnow()
    per_cell: list[tuple[list, list]] = [([], []) for _ in cells]
    for host in names.values():
        chosen = [n for n in range(len(cells)) if rng.random() < 0.45] or [rng.randrange(2)]
        for n in chosen:
            spelled = _spelling(rng, host)
            svc_rows, node_rows = per_cell[n]
            kind = rng.random()
            if kind < 0.1:
                svc_rows.append((service_row(spelled, "nova-conductor", now=now), None))
                continue
            service = service_row(spelled, "nova-compute", now=now)
            service["deleted"] = 1 if rng.random() < 0.15 else 0
            node = None
            if kind < 0.85:
                node = compute_node_row(spelled, None, now=now)
                node["mapped"] = 1 if rng.random() < 0.7 else 0
                node["deleted"] = 1 if rng.random() < 0.15 else 0
            if kind > 0.25 or node is None:
                svc_rows.append((service, node))
            else:
                node_rows.append(node)
        roll = rng.random()
        if roll < 0.75:
            cell = cells[chosen[0]] if roll < 0.6 else rng.choice(cells)
            insert_host_mapping(cloud, _spelling(rng, host), cell)
    for url, (svc_rows, node_rows) in zip(cloud.cell_urls, per_cell, strict=True):
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                for service, node in svc_rows:
                    sid = conn.execute(services.insert().values(service)).inserted_primary_key
                    if node is not None:
                        node_rows.append({**node, "service_id": sid[0]})
                if node_rows:
                    conn.execute(compute_nodes.insert(), node_rows)
        finally:
            engine.dispose()


def insert_host_mapping(cloud, host, cell_uuid):
    cloud.execute(cloud.api_url, "INSERT INTO host_mappings (cell_id, host) "
                  "SELECT id, :h FROM cell_mappings WHERE uuid = :c", {"h": host, "c": cell_uuid})


def differences(found, expected):
    """kind -> (only the audit's, only the reference's), for the kinds that differ."""
    return {kind: (found[kind] - expected[kind], expected[kind] - found[kind])
            for kind in KINDS if found[kind] != expected[kind]}


def test_merge_walk_equals_the_reference_before_and_after_fix(any_cloud):
    seed = int(os.environ.get("AUDIT_REFERENCE_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    cells = setup_cells(any_cloud, extra_cells=1)
    plant(any_cloud, cells, rng, 150)

    before = reference(any_cloud, cells)
    result, _, found = audited(any_cloud)
    assert result.exit_code in (0, 1), result.stderr
    assert found == before, f"seed {seed}: {differences(found, before)}"
    assert all(before.values()), f"seed {seed}: a kind was not planted"

    result, payload, _ = audited(any_cloud, "--fix")
    assert sum(payload["fixed"].values()) > 0, f"seed {seed}"
    after = reference(any_cloud, cells)
    _, _, found = audited(any_cloud)
    assert found == after, f"seed {seed}: {differences(found, after)}"
    # What --fix may repair is gone (no host planted here runs instances).
    assert not after["host_mapping_without_host"], f"seed {seed}"
    assert not after["mapping_without_instance"], f"seed {seed}"
