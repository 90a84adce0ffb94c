"""Time discover_hosts and map_instances on a 3-node Galera cluster beside the plain MariaDB.

For each target (``plain``: the MariaDB of CELLCTL_TEST_MYSQL, default
root@127.0.0.1:3306; ``galera``: a 3-node cluster this script starts on its
own loopback ports and data directories, with tests/galera.py, and removes at
the end): fresh API and cell databases, ``--hosts`` compute hosts seeded in
bulk (a service and a compute node each), ``cellctl discover_hosts`` timed
end to end as a subprocess, then ``--instances`` instances seeded with
``cellctl dev add-instances`` and ``cellctl map_instances`` timed the same
way. Every figure is checked (one mapping per host and instance).

The cluster's nodes get the plain server's InnoDB settings that matter here
(buffer pool 128 MiB, innodb_flush_log_at_trx_commit = 1), so the difference
is what Galera adds: every commit is certified and replicated to two more
nodes, all on the same machine. ``--galera-limits`` also sets
wsrep_max_ws_rows = 10000 and wsrep_max_ws_size = 1 MiB on the cluster.

    .venv/bin/python benchmarks/bench_galera.py [--instances 1000000] [--hosts 100000]
        [--targets plain,galera] [--galera-limits]

Not run by .ci/run. Needs what the tests' cluster needs (mariadb-server,
galera-4, rsync) and root or the right to run mariadbd.
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
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

MYSQL_SERVER = os.environ.get("CELLCTL_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
SEED_CHUNK = 5_000


def cellctl(env: dict[str, str], *args: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cellctl", *args], env={**os.environ, **env},
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"cellctl {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return seconds, done.stdout


def scalar(url: str, statement: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(statement).scalar() or 0)
    finally:
        engine.dispose()


def seed_hosts(cell_url: str, count: int) -> None:
    from seeding import seed_compute_hosts

    seed_compute_hosts(cell_url, count, lambda n: f"compute-{n:07d}", SEED_CHUNK)


def bench(target: str, server: str, hosts: int, instances: int, workdir: Path,
          before_timing: Callable[[], None] = lambda: None) -> dict[str, float]:
    names = [f"cellctl_bench_{role}_{uuid.uuid4().hex[:8]}" for role in ("api", "cell")]
    engine = sa.create_engine(server)
    with engine.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    api, cell = (f"{server}/{name}" for name in names)
    env = {"CELLCTL_STATE_DIR": str(workdir / "state"), "CELLCTL_API_DATABASE_CONNECTION": api,
           "CELLCTL_DATABASE_CONNECTION": cell, "CELLCTL_TRANSPORT_URL": "memory:///"}
    figures: dict[str, float] = {}
    try:
        cellctl(env, "api_db", "sync")
        cellctl(env, "db", "sync")
        _, out = cellctl(env, "--format", "json", "create_cell", "--name", "bench")
        cell_uuid = json.loads(out)["uuid"]

        started = time.perf_counter()
        seed_hosts(cell, hosts)
        print(f"{target}: seeded {hosts:,} hosts in {time.perf_counter() - started:.1f} s",
              flush=True)
        seconds, _ = cellctl(env, "dev", "add-instances", "--count", str(instances),
                             "--host", "compute-0000000")
        print(f"{target}: seeded {instances:,} instances in {seconds:.1f} s", flush=True)
        before_timing()

        seconds, _ = cellctl(env, "discover_hosts")
        assert scalar(api, "SELECT COUNT(DISTINCT host) FROM host_mappings") == hosts
        figures["discover_hosts"] = hosts / seconds
        print(f"{target}: discover_hosts {hosts:,} hosts in {seconds:.1f} s = "
              f"{hosts / seconds:,.0f} hosts/s", flush=True)

        seconds, _ = cellctl(env, "map_instances", "--cell_uuid", cell_uuid)
        mapped = scalar(api, "SELECT COUNT(*) FROM instance_mappings WHERE cell_id IS NOT NULL")
        assert mapped == instances, mapped
        figures["map_instances"] = instances / seconds
        print(f"{target}: map_instances {instances:,} instances in {seconds:.1f} s = "
              f"{instances / seconds:,.0f} instances/s", flush=True)
    finally:
        engine = sa.create_engine(server)
        with engine.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--targets", default="plain,galera")
    parser.add_argument("--galera-limits", action="store_true",
                        help="wsrep_max_ws_rows = 10000, wsrep_max_ws_size = 1 MiB")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="cellctl-bench-") as tmp:
        for target in args.targets.split(","):
            if target == "plain":
                results[target] = bench(target, MYSQL_SERVER, args.hosts, args.instances,
                                        Path(tmp))
                continue
            from galera import GaleraCluster

            cluster = GaleraCluster(Path(tempfile.mkdtemp(prefix="cellctl-bench-galera-")),
                                    buffer_pool="128M", flush_log_at_trx_commit=1)
            try:
                started = time.perf_counter()
                cluster.start()
                print(f"galera: 3 nodes up in {time.perf_counter() - started:.0f} s", flush=True)

                def limits(cluster: GaleraCluster = cluster) -> None:
                    if args.galera_limits:  # after seeding: only the timed runs obey them
                        cluster.set_global("wsrep_max_ws_rows", 10_000)
                        cluster.set_global("wsrep_max_ws_size", 1024 * 1024)

                results[target] = bench(target, cluster.url(1).rstrip("/"), args.hosts,
                                        args.instances, Path(tmp), limits)
            finally:
                cluster.shutdown()
    if "plain" in results and "galera" in results:
        for what in ("discover_hosts", "map_instances"):
            ratio = results["plain"][what] / results["galera"][what]
            print(f"{what}: Galera takes {ratio:.2f}x the plain server's time")


if __name__ == "__main__":
    main()
