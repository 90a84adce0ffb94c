"""map_instances killed with SIGKILL mid-run, and run twice at once, on MariaDB.

Real child processes (``python -m cellctl``) on a cell of 120,000 instances:
after every kill the mapped instances are exactly those up to the marker in
Nova's order (the marker moves only with the work it stands for), and a final
run maps the rest with exactly one mapping per instance and no marker left.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from instance_helpers import MARKER, add_instances, mapped_cell, nova_order

from cellctl.tables.rows import insert_fake_instances

INSTANCES = 120_000


@pytest.fixture
def big_cell(mysql_factory, make_cloud):
    cloud = make_cloud(mysql_factory)
    cell = mapped_cell(cloud)
    engine = sa.create_engine(cloud.cell_url)
    try:
        insert_fake_instances(engine, INSTANCES, host="compute1", deleted=500)
    finally:
        engine.dispose()
    add_instances(cloud, 3, hidden=True)  # never mapped
    return cloud, cell


def start_map(cloud, cell, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "cellctl", "--format", "json", "map_instances",
         "--cell_uuid", cell, *args],
        env={**os.environ, **cloud.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )


def api_state(cloud):
    """(marker instance UUIDs, set of mapped instance UUIDs, number of mapping rows)."""
    engine = sa.create_engine(cloud.api_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT instance_uuid, project_id FROM instance_mappings")).all()
    finally:
        engine.dispose()
    marker = [u.replace(" ", "-") for u, p in rows if p == MARKER]
    mapped = [u for u, p in rows if p != MARKER]
    return marker, set(mapped), len(mapped)


def current_marker(cloud):
    engine = sa.create_engine(cloud.api_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT instance_uuid FROM instance_mappings WHERE project_id = :m"),
                {"m": MARKER}).scalar()
    finally:
        engine.dispose()


def wait_for_commit(cloud, proc, previous, timeout=60.0):
    """Wait until the run has committed a batch (the marker moved)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"map_instances ended before it could be killed: {proc.communicate()}")
        if current_marker(cloud) not in (None, previous):
            return
        time.sleep(0.02)
    pytest.fail("map_instances committed nothing in time")


def test_sigkill_at_any_moment_then_rerun(big_cell):
    cloud, cell = big_cell
    order = nova_order(cloud)
    assert len(order) == INSTANCES
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)

    previous = None
    for attempt in range(4):
        proc = start_map(cloud, cell)
        if attempt == 0:
            time.sleep(rng.uniform(0.0, 0.3))  # during start-up or the first batch
        else:
            wait_for_commit(cloud, proc, previous)
            time.sleep(rng.uniform(0.0, 0.4))  # anywhere inside a later batch
        assert proc.poll() is None, f"seed {seed}: the run finished before the kill"
        proc.send_signal(signal.SIGKILL)
        proc.wait()

        marker, mapped, rows = api_state(cloud)
        done = order.index(marker[0]) + 1 if marker else 0
        assert len(marker) <= 1, seed
        assert mapped == set(order[:done]), f"seed {seed}: mappings and marker disagree"
        assert rows == done, seed
        previous = marker[0].replace("-", " ") if marker else None

    assert done > 0, f"seed {seed}: no kill happened after a commit"
    proc = start_map(cloud, cell)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, (out, err)
    assert json.loads(out)["mapped"] == INSTANCES - done
    marker, mapped, rows = api_state(cloud)
    assert marker == []
    assert mapped == set(order)
    assert rows == INSTANCES


def test_two_concurrent_runs_map_each_instance_once(mysql_factory, make_cloud):
    cloud = make_cloud(mysql_factory)
    cell = mapped_cell(cloud)
    engine = sa.create_engine(cloud.cell_url)
    try:
        insert_fake_instances(engine, 30_000)
    finally:
        engine.dispose()

    runs = [start_map(cloud, cell), start_map(cloud, cell)]
    outputs = [run.communicate(timeout=300) for run in runs]

    assert [run.returncode for run in runs] == [0, 0], outputs
    # Between them they created each mapping exactly once.
    assert sum(json.loads(out)["mapped"] for out, _ in outputs) == 30_000
    marker, mapped, rows = api_state(cloud)
    assert marker == []
    assert mapped == set(nova_order(cloud))
    assert rows == 30_000
