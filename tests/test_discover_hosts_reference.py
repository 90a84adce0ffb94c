"""discover_hosts' batched path against a slow, obviously correct reference on randomized
cells.

Each cell has every state planted at random: hosts with one to four nodes,
nodes marked mapped (1), unmarked (0) or NULL, deleted nodes, nodes naming no
host, hosts already mapped to this cell, hosts mapped to another cell, and
mappings of hosts the cell does not have. The reference decides one node at a
time from plain SQL rows; the command runs in small pages and batches.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa
from hostsupport import host_mappings, map_host, node_flags, setup_cells

import cellctl.paging
from cellctl.clock import utcnow
from cellctl.tables.cell import compute_nodes
from cellctl.tables.rows import compute_node_row

SEEDS = range(6)


def plant(cloud, rng: random.Random, here: str, other: str) -> list[dict[str, Any]]:
    """Random nodes in ``here``'s database and host mappings; the nodes as planted."""
    now = utcnow()
    hosts = [f"host-{n:03d}" for n in range(rng.randint(10, 40))]
    nodes = []
    for host in hosts:
        for n in range(rng.choice([1, 1, 1, 2, 4])):
            row = compute_node_row(host, None, now=now, hypervisor_hostname=f"{host}-node{n}")
            row["mapped"] = rng.choice([0, 0, 1, None])
            if rng.random() < 0.15:
                row["deleted"] = 1  # set to the row's id below, as Nova soft-deletes
            if rng.random() < 0.05:
                row["host"] = None
            nodes.append(row)
    rng.shuffle(nodes)  # ids no longer follow host names
    engine = sa.create_engine(cloud.cell_url)
    with engine.begin() as conn:
        conn.execute(compute_nodes.insert(), nodes)
        conn.execute(compute_nodes.update().where(compute_nodes.c.deleted != 0)
                     .values(deleted=compute_nodes.c.id))
    engine.dispose()
    for host in rng.sample(hosts, len(hosts) // 3):
        map_host(cloud, host, rng.choice([here, other]))
    for n in range(rng.randint(0, 3)):
        map_host(cloud, f"gone-{n}", rng.choice([here, other]))
    return [{"uuid": r["uuid"], "host": r["host"], "mapped": r["mapped"],
             "deleted": r["deleted"]} for r in nodes]


def reference(nodes: list[dict[str, Any]], mappings: dict[str, str],
              here: str) -> tuple[dict[str, str], dict[str, Any], set[str]]:
    """(host mappings, node flags, hosts mapped to another cell) after one discovery."""
    mappings = dict(mappings)
    flags = {node["uuid"]: node["mapped"] for node in nodes}
    elsewhere = set()
    for node in nodes:
        if node["deleted"] or node["host"] is None or node["mapped"] == 1:
            continue  # not a candidate: left as it is
        host = node["host"]
        mappings.setdefault(host, here)
        if mappings[host] == here:
            flags[node["uuid"]] = 1
        else:
            elsewhere.add(host)  # left unmarked, to be seen again
    return mappings, flags, elsewhere


@pytest.mark.parametrize("seed", SEEDS)
def test_same_mappings_and_marks_as_the_reference(cloud_no_pg, monkeypatch, seed):
    cloud = cloud_no_pg
    rng = random.Random(seed)
    monkeypatch.setattr(cellctl.paging, "BATCH_SIZE", rng.randint(2, 9))
    here, other = setup_cells(cloud, extra_cells=1)
    nodes = plant(cloud, rng, here, other)
    mappings, flags, elsewhere = reference(nodes, host_mappings(cloud), here)

    result = cloud.run("discover_hosts")

    assert result.exit_code == 0, result.output
    assert host_mappings(cloud) == mappings, f"seed {seed}"
    assert node_flags(cloud.cell_url) == flags, f"seed {seed}"
    for host in elsewhere:
        assert f"Host '{host}' of cell 'cell1' ({here}) is mapped to cell {other}" \
            in result.stderr
    assert result.stderr.count("is mapped to cell") == len(elsewhere)

    again = cloud.run("discover_hosts", "--strict")  # nothing new: exit 1, nothing changes
    assert again.exit_code == 1, again.output
    assert host_mappings(cloud) == mappings
    assert node_flags(cloud.cell_url) == flags
