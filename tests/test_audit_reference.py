"""audit's merge walk against a slow, obviously correct reference: a randomized cloud with
every instance finding planted (unmapped, orphaned, misplaced, hidden copies, soft-deleted
rows, instances in several cells, upper-case UUIDs), the audit's answer equal to Python
sets over full reads of every table, before and after --fix."""

from __future__ import annotations

import json
import random
import uuid as uuidlib

import sqlalchemy as sa
from auditsupport import insert_mappings
from hostsupport import setup_cells
from instance_helpers import add_instances

KINDS = ("instance_without_mapping", "mapping_without_instance", "mapping_in_wrong_cell")


def rows(url, query):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).all()
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


def audited(cloud, *args):
    result = cloud.run("--format", "json", "audit", *[a for k in KINDS for a in ("--kind", k)],
                       "--limit", "100000", *args)
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


def test_merge_walk_equals_the_reference_before_and_after_fix(any_cloud):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    cells = setup_cells(any_cloud, extra_cells=1)
    plant(any_cloud, cells, rng, 150)

    before = reference(any_cloud, cells)
    result, _, found = audited(any_cloud)
    assert result.exit_code in (0, 1), result.stderr
    assert found == before, f"seed {seed}"
    assert all(before.values()), f"seed {seed}: a kind was not planted"

    result, payload, _ = audited(any_cloud, "--fix")
    assert sum(payload["fixed"].values()) > 0, f"seed {seed}"
    after = reference(any_cloud, cells)
    _, _, found = audited(any_cloud)
    assert found == after, f"seed {seed}"
