"""map_instances' fast path against a slow, obviously correct reference on randomized cells.

Each cell has every state planted at random: deleted (anywhere, or only
among the newest) and soft-deleted instances, hidden ones (True, False,
NULL), no project_id or no user_id, equal and NULL created_at, instances
already mapped to another cell or mapped with no cell, and sometimes a marker
(at an instance of this cell, hidden ones included, or at an instance it
does not have). The reference reads the rows with plain SQL and decides in
Python, one instance at a time; the command runs in small batches (on MariaDB
a cell bigger than a small head is read head first, through the index), whole
or in random ``--max-count`` steps."""

from __future__ import annotations

import datetime
import json
import random
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from instance_helpers import BASE_TIME, instance_mappings, mapped_cell, markers, put_marker

import cellctl.mappings.cell_instances
from cellctl.tables.cell import instances

SEEDS = range(6)


def plant(cloud, rng: random.Random) -> dict[str, Any]:
    """A random cell and API database; what the reference needs to know about them."""
    rows = []
    # Deleted instances anywhere, or only among the newest (MariaDB's head then has none).
    deleted_from = rng.choice([None, 8])
    for n in range(rng.randint(40, 120)):
        minute = rng.choice([None, *range(12)])
        created_at = None if minute is None else BASE_TIME + datetime.timedelta(minutes=minute)
        rows.append({
            "id": n + 1, "uuid": str(uuid.uuid4()),
            "project_id": None if rng.random() < 0.1 else f"project-{rng.randint(0, 3)}",
            "user_id": None if rng.random() < 0.1 else f"user-{rng.randint(0, 9)}",
            "deleted": (n + 1) if rng.random() < 0.2 and (
                deleted_from is None or (minute or 0) >= deleted_from) else 0,
            "vm_state": rng.choice(["active", "active", "stopped", "soft-delete", "deleted"]),
            "hidden": rng.choice([False, False, False, True, None]),
            "created_at": created_at,
        })
    rng.shuffle(rows)  # ids no longer follow created_at
    engine = sa.create_engine(cloud.cell_url)
    with engine.begin() as conn:
        conn.execute(instances.insert(), rows)
    engine.dispose()

    cloud.execute(cloud.api_url, "INSERT INTO cell_mappings (uuid, name, transport_url, "
                  "database_connection) VALUES (:u, 'other', 'memory:///', 'sqlite://')",
                  {"u": str(uuid.uuid4())})
    other = next(r["id"] for r in cloud.api_rows("cell_mappings") if r["name"] == "other")
    existing = {}
    for row in rng.sample(rows, len(rows) // 5):
        cell_id = rng.choice([other, None])
        existing[row["uuid"]] = cell_id
        cloud.execute(cloud.api_url, "INSERT INTO instance_mappings (instance_uuid, cell_id, "
                      "project_id, user_id, queued_for_delete) VALUES (:u, :c, 'p', 'u', :f)",
                      {"u": row["uuid"], "c": cell_id, "f": False})
    marker = None
    if rng.random() < 0.5:
        marker = rng.choice([rng.choice(rows)["uuid"], str(uuid.uuid4())])
        put_marker(cloud, marker)
    return {"existing": existing, "marker": marker}


def reference(cloud, cell_id: int, marker: str | None,
              existing: dict[str, int | None]) -> tuple[dict[str, int], dict[str, tuple]]:
    """(the result's counts, the new mappings by UUID), deciding one instance at a time."""
    rows = cloud.rows(cloud.cell_url, "instances")

    def position(row: dict[str, Any]) -> tuple:
        return (row["created_at"] is not None, row["created_at"] or BASE_TIME, row["id"])

    rows.sort(key=position)
    at = next((n for n, row in enumerate(rows) if row["uuid"] == marker), -1)
    counts = {"processed": 0, "mapped": 0, "already_mapped": 0, "without_project": 0}
    new = {}
    for row in rows[at + 1:]:
        if row["hidden"]:
            continue
        counts["processed"] += 1
        if row["project_id"] is None:
            counts["without_project"] += 1
        elif row["uuid"] in existing:
            counts["already_mapped"] += 1
        else:
            counts["mapped"] += 1
            queued = row["deleted"] != 0 or row["vm_state"] == "soft-delete"
            new[row["uuid"]] = (cell_id, row["project_id"], row["user_id"], queued)
    return counts, new


@pytest.mark.parametrize("seed", SEEDS)
def test_same_mappings_as_the_reference(cloud_no_pg, monkeypatch, seed):
    cloud = cloud_no_pg
    rng = random.Random(seed)
    monkeypatch.setattr(cellctl.mappings.cell_instances, "WRITE_BATCH", rng.randint(2, 13))
    # On MariaDB cells bigger than the head are read head first (cellctl.mappings.cell_order).
    monkeypatch.setattr(cellctl.mappings.cell_instances, "HEAD_BATCHES", rng.randint(1, 4))
    cell = mapped_cell(cloud)
    cell_id = next(r["id"] for r in cloud.api_rows("cell_mappings") if r["uuid"] == cell)
    planted = plant(cloud, rng)
    counts, new = reference(cloud, cell_id, planted["marker"], planted["existing"])

    totals = dict.fromkeys(counts, 0)
    bounded = seed % 2 == 1  # odd seeds: random --max-count steps until exit 0
    for _ in range(200):
        steps = ["--max-count", str(rng.randint(1, 30))] if bounded else []
        result = cloud.run("--format", "json", "map_instances", "--cell_uuid", cell, *steps)
        assert result.exit_code in (0, 1), result.output
        data = json.loads(result.stdout)
        for key in totals:
            totals[key] += data[key]
        if result.exit_code == 0:
            break

    assert totals == counts, f"seed {seed}"
    found = instance_mappings(cloud)
    assert {u: m["cell_id"] for u, m in found.items() if u in planted["existing"]} \
        == planted["existing"], "mappings that existed were left alone"
    assert {u: (m["cell_id"], m["project_id"], m["user_id"], bool(m["queued_for_delete"]))
            for u, m in found.items() if u not in planted["existing"]} == new, f"seed {seed}"
    assert markers(cloud) == []
