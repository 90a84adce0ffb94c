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
root@127.0.0.1:3306); its databases are dropped afterwards. Each child is run and
measured by ``measure.Child``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from measure import Child, Server, cellctl, times

from cellctl import migrate
from cellctl.db import create_engine
from cellctl.tables.api import cell_mappings, host_mappings, instance_mappings
from cellctl.tables.cell import compute_nodes, instances

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


# The floor: the two counts, each side streamed once in key order and merged.
FLOOR = """
import json, os
import sqlalchemy as sa

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
    """Run the command (or its floor) in a child; its wall time, its peak RSS (MiB) and
    its JSON."""
    env = {"CELLCTL_API_DATABASE_CONNECTION": api_url, "CELLCTL_DATABASE_CONNECTION": cell_url,
           "CELLCTL_STATE_DIR": state_dir}
    child = (Child([sys.executable, "-c", FLOOR], env).expect(0) if floor else
             cellctl(env, "--format", "json", "status").expect(0, 1, 2))
    return child.seconds, child.rss_mib, json.loads(child.out)


def bench(backend: str, hosts: int, count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(backend, Path(tmp))
        try:
            api_url, cell_url, cell0_url = (server.new(n) for n in ("api", "cell1", "cell0"))
            started = time.monotonic()
            populate(api_url, cell_url, cell0_url, hosts, count)
            print(f"{backend}: populated in {time.monotonic() - started:.0f} s", flush=True)
            runs = [(run_status(api_url, cell_url, tmp), run_status(api_url, cell_url, tmp, True))
                    for _ in range(repeat)]
        finally:
            server.drop()
    elapsed, peak_mib, payload = min((mine for mine, _ in runs), key=lambda r: r[0])
    floor_elapsed, floor_mib, counted = min((floor for _, floor in runs), key=lambda r: r[0])
    checks = {c["check"]: c["details"] for c in payload["checks"]}
    rows = hosts + count
    print(f"{backend:7} {hosts:>9} hosts {count:>9} instances  {elapsed:7.1f} s  "
          f"{rows / elapsed:>9,.0f} rows/s  peak RSS {peak_mib:6.1f} MiB  "
          f"exit {payload['exit_code']} | floor {floor_elapsed:6.1f} s {floor_mib:6.1f} MiB | "
          f"ratio {times(elapsed, floor_elapsed)} (best of {repeat})")
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
