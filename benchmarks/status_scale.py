"""How fast ``cellctl status`` checks host and instance mappings at scale, and in how much memory.

Builds one cell with ``--hosts`` compute nodes and ``--instances`` instances
(a tenth of each left unmapped) on SQLite and on MariaDB, runs
``cellctl --format json status`` in a child process, and prints rows checked
per second and the child's peak RSS; then, in the same run, its floor (FLOOR):
the counts status needs, each side read once in key order (streamed) and
merged (live compute hosts against host_mappings, visible instances against
instance_mappings), and the ratio. ``--repeat``: best of that many runs of each,
alternately.

    .venv/bin/python benchmarks/status_scale.py --hosts 100000 --instances 1000000

MariaDB is the server of the tests (``CELLCTL_TEST_MYSQL``, default
root@127.0.0.1:3306); its databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from cellctl import migrate
from cellctl.db import create_engine
from cellctl.tables.api import cell_mappings, host_mappings, instance_mappings
from cellctl.tables.cell import compute_nodes, instances

MYSQL = os.environ.get("CELLCTL_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
CHUNK = 10_000
CELL0 = "00000000-0000-0000-0000-000000000000"


def insert_chunks(engine: sa.Engine, table: sa.Table, rows) -> None:
    chunk = []
    with engine.begin() as conn:
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                conn.execute(table.insert(), chunk)
                chunk = []
        if chunk:
            conn.execute(table.insert(), chunk)


def populate(api_url: str, cell_url: str, cell0_url: str, hosts: int, count: int) -> None:
    api = create_engine(api_url, must_exist=False)
    cell = create_engine(cell_url, must_exist=False)
    cell0 = create_engine(cell0_url, must_exist=False)
    migrate.sync(api, "api")
    migrate.sync(cell, "cell")
    migrate.sync(cell0, "cell")
    cell_uuid = str(uuid.uuid4())
    with api.begin() as conn:
        conn.execute(cell_mappings.insert(), [
            {"id": 1, "uuid": CELL0, "name": "cell0", "transport_url": "none:///",
             "database_connection": cell0_url},
            {"id": 2, "uuid": cell_uuid, "name": "cell1", "transport_url": "memory:///",
             "database_connection": cell_url},
        ])
    names = [f"compute-{i:07}" for i in range(hosts)]
    insert_chunks(cell, compute_nodes, (
        {"host": h, "hypervisor_hostname": h, "uuid": str(uuid.uuid4()), "vcpus": 1,
         "memory_mb": 1, "local_gb": 1, "vcpus_used": 0, "memory_mb_used": 0,
         "local_gb_used": 0, "hypervisor_type": "fake", "hypervisor_version": 1,
         "cpu_info": "{}", "deleted": 0, "mapped": 1} for h in names))
    insert_chunks(api, host_mappings, ({"cell_id": 2, "host": h}
                                       for i, h in enumerate(names) if i % 10))
    uuids = [str(uuid.uuid4()) for _ in range(count)]
    insert_chunks(cell, instances, ({"uuid": u, "project_id": "p", "user_id": "u", "deleted": 0}
                                    for u in uuids))
    insert_chunks(api, instance_mappings, (
        {"cell_id": 2, "instance_uuid": u, "project_id": "p", "user_id": "u"}
        for i, u in enumerate(uuids) if i % 10))
    for engine in (api, cell, cell0):
        engine.dispose()


# Runs cellctl and records its peak RSS (VmHWM) at exit. Not ru_maxrss: on
# Linux a child inherits its parent's high-water mark through fork.
CHILD = """
import atexit, os, runpy, sys

def record_peak():
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(peak.split()[1])

atexit.register(record_peak)
sys.argv = ["cellctl", *sys.argv[1:]]
runpy.run_module("cellctl", run_name="__main__")
"""


# The floor: the two counts, each side streamed once in key order and merged; the
# same peak RSS record as CHILD.
FLOOR = """
import atexit, json, os, sys
import sqlalchemy as sa

def record_peak():
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(peak.split()[1])

atexit.register(record_peak)
api = sa.create_engine(os.environ["CELLCTL_API_DATABASE_CONNECTION"])
cell = sa.create_engine(os.environ["CELLCTL_DATABASE_CONNECTION"])

def keys(engine, sql):
    with engine.connect() as conn:
        for part in conn.execution_options(yield_per=10_000).execute(sa.text(sql)).partitions():
            yield from (row[0] for row in part)

def missing(have, mapped):
    checked = unmapped = 0
    mapped = iter(mapped)
    other = next(mapped, None)
    for key in have:
        checked += 1
        while other is not None and other < key:
            other = next(mapped, None)
        unmapped += other != key
    return checked, unmapped

print(json.dumps({
    "hosts": missing(keys(cell, "SELECT DISTINCT host FROM compute_nodes WHERE deleted = 0 "
                                "AND host IS NOT NULL ORDER BY host"),
                     keys(api, "SELECT host FROM host_mappings ORDER BY host")),
    "instances": missing(keys(cell, "SELECT uuid FROM instances WHERE hidden IS NULL "
                                    "OR hidden = 0 ORDER BY uuid"),
                         keys(api, "SELECT instance_uuid FROM instance_mappings "
                                   "ORDER BY instance_uuid")),
}))
"""


def run_status(api_url: str, cell_url: str, state_dir: str, floor: bool = False
               ) -> tuple[float, float, dict]:
    """Run the command (or its floor) in a child; its wall time, its peak RSS (MB) and
    its JSON."""
    peak_file = Path(state_dir, "peak")
    env = {**os.environ, "CELLCTL_API_DATABASE_CONNECTION": api_url,
           "CELLCTL_DATABASE_CONNECTION": cell_url, "CELLCTL_STATE_DIR": state_dir,
           "BENCH_PEAK_FILE": str(peak_file)}
    args = ["-c", FLOOR] if floor else ["-c", CHILD, "--format", "json", "status"]
    started = time.monotonic()
    child = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if not child.stdout:
        raise SystemExit(f"{'floor' if floor else 'status'} failed: {child.stderr}")
    return elapsed, int(peak_file.read_text()) / 1024, json.loads(child.stdout)


def mysql_databases(names: list[str], create: bool) -> None:
    engine = sa.create_engine(MYSQL)
    with engine.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f"{'CREATE' if create else 'DROP'} DATABASE "
                                 f"{'' if create else 'IF EXISTS '}{name}")
    engine.dispose()


def bench(backend: str, hosts: int, count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if backend == "sqlite":
            api_url, cell_url, cell0_url = (f"sqlite:///{Path(tmp, n)}.sqlite"
                                            for n in ("api", "cell1", "cell0"))
            names: list[str] = []
        else:
            suffix = uuid.uuid4().hex[:8]
            names = [f"cellctl_bench_{n}_{suffix}" for n in ("api", "cell1", "cell0")]
            mysql_databases(names, create=True)
            api_url, cell_url, cell0_url = (f"{MYSQL}/{n}" for n in names)
        try:
            started = time.monotonic()
            populate(api_url, cell_url, cell0_url, hosts, count)
            print(f"{backend}: populated in {time.monotonic() - started:.0f} s", flush=True)
            runs = [(run_status(api_url, cell_url, tmp), run_status(api_url, cell_url, tmp, True))
                    for _ in range(repeat)]
        finally:
            if names:
                mysql_databases(names, create=False)
    elapsed, peak_mb, payload = min((mine for mine, _ in runs), key=lambda r: r[0])
    floor_elapsed, floor_mb, counted = min((floor for _, floor in runs), key=lambda r: r[0])
    checks = {c["check"]: c["details"] for c in payload["checks"]}
    rows = hosts + count
    print(f"{backend:7} {hosts:>9} hosts {count:>9} instances  {elapsed:7.1f} s  "
          f"{rows / elapsed:>9,.0f} rows/s  peak RSS {peak_mb:6.1f} MB  "
          f"exit {payload['exit_code']} | floor {floor_elapsed:6.1f} s {floor_mb:6.1f} MB | "
          f"ratio {elapsed / floor_elapsed:4.2f}x (best of {repeat})")
    print(f"        {checks['Host mappings'][:70]}")
    print(f"        {checks['Instance mappings'][:70]}")
    print(f"        floor: unmapped hosts {counted['hosts'][1]} of {counted['hosts'][0]}, "
          f"instances {counted['instances'][1]} of {counted['instances'][0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20_000)
    parser.add_argument("--instances", type=int, default=200_000)
    parser.add_argument("--backend", choices=["sqlite", "mysql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for backend in ("sqlite", "mysql") if args.backend == "both" else (args.backend,):
        bench(backend, args.hosts, args.instances, args.repeat)


if __name__ == "__main__":
    main()
