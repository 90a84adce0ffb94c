"""Time discover_hosts and map_instances on a 3-node Galera cluster beside the plain MariaDB.

For each target (``plain``: the MariaDB of CELLCTL_TEST_MYSQL, default
root@127.0.0.1:3306; ``galera``: a 3-node cluster this script starts on its
own loopback ports and data directories, with tests/galera.py, and removes at
the end): fresh API and cell databases, ``--hosts`` compute hosts seeded in
bulk (a service and a compute node each), ``cellctl discover_hosts`` timed
end to end as a subprocess, then ``--instances`` instances seeded with
``cellctl dev add-instances`` and ``cellctl map_instances`` timed the same
way. Every figure is checked (one mapping per host and instance). Beside each
command, in the same run on the same target, its floor (benchmarks/measure.py:
for discover_hosts the nodes streamed once, the mappings inserted in bulk and
the nodes marked by id, end to end in a process of its own; for map_instances
the database's time for raw multi-row INSERTs of the same rows in UUID order)
and the ratio. With ``--galera-limits`` the floors commit 3,000 rows at a time.

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
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from measure import Server, cellctl, floor, new_cell, ratio, scalar, seed_compute_hosts

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

SEED_CHUNK = 5_000
# Rows per floor transaction under --galera-limits: below 10,000 write-set rows and
# 1 MiB (about 280 bytes per mapping), as cellctl splits its own batches.
LIMITED_BATCH = 3_000


def bench(target: str, server_url: str, hosts: int, instances: int, workdir: Path,
          before_timing: Callable[[], None] = lambda: None,
          batch: int | None = None) -> dict[str, tuple[float, float]]:
    """Seed, then time discover_hosts and map_instances beside their floors:
    {what: (seconds, floor seconds)}."""
    server = Server(server_url, workdir)
    api, cell = server.new("api"), server.new("cell")
    env = {"CELLCTL_STATE_DIR": str(workdir / "state"), "CELLCTL_API_DATABASE_CONNECTION": api,
           "CELLCTL_DATABASE_CONNECTION": cell, "CELLCTL_TRANSPORT_URL": "memory:///"}
    sizes = [] if batch is None else [str(batch)]
    ratios: dict[str, tuple[float, float]] = {}
    try:
        cellctl(env, "api_db", "sync").expect(0)
        cellctl(env, "db", "sync").expect(0)
        out = cellctl(env, "--format", "json", "create_cell", "--name", "bench").expect(0).out
        cell_uuid = json.loads(out)["uuid"]

        started = time.perf_counter()
        seed_compute_hosts(cell, hosts, lambda n: f"compute-{n:07d}", SEED_CHUNK)
        print(f"{target}: seeded {hosts:,} hosts in {time.perf_counter() - started:.1f} s",
              flush=True)
        seeded = cellctl(env, "dev", "add-instances", "--count", str(instances),
                         "--host", "compute-0000000").expect(0)
        print(f"{target}: seeded {instances:,} instances in {seeded.seconds:.1f} s", flush=True)
        before_timing()

        floor_api = server.new("floorapi")  # the floors write here, cellctl into ``api``
        cellctl({**env, "CELLCTL_API_DATABASE_CONNECTION": floor_api}, "api_db",
                "sync").expect(0)
        floor_cell = new_cell(floor_api)
        least = floor("discover_hosts", floor_api, cell, floor_cell, *sizes)
        assert scalar(floor_api, "SELECT COUNT(*) FROM host_mappings") == hosts
        server.admin(f"UPDATE {cell.rsplit('/', 1)[1]}.compute_nodes SET mapped = 0")
        run = cellctl(env, "discover_hosts").expect(0)
        assert scalar(api, "SELECT COUNT(DISTINCT host) FROM host_mappings") == hosts
        ratios["discover_hosts"] = run.seconds, least.seconds
        print(f"{target}: discover_hosts {hosts:,} hosts in {run.seconds:.1f} s = "
              f"{hosts / run.seconds:,.0f} hosts/s, peak RSS {run.rss_mib:.0f} MiB | floor "
              f"{least.seconds:.1f} s, peak RSS {least.rss_mib:.0f} MiB: "
              f"{ratio(run.seconds, least.seconds)}", flush=True)

        raw = float(floor("map_instances", cell, floor_api, floor_cell, "uuid", *sizes).out)
        run = cellctl(env, "map_instances", "--cell_uuid", cell_uuid).expect(0)
        mapped = scalar(api, "SELECT COUNT(*) FROM instance_mappings WHERE cell_id IS NOT NULL")
        assert mapped == instances, mapped
        ratios["map_instances"] = run.seconds, raw
        print(f"{target}: map_instances {instances:,} instances in {run.seconds:.1f} s = "
              f"{instances / run.seconds:,.0f} instances/s, peak RSS {run.rss_mib:.0f} MiB | "
              f"floor (raw INSERT, UUID order, the database's time) {raw:.1f} s: "
              f"{ratio(run.seconds, raw)} ({raw / run.seconds:.0%} of its rate)", flush=True)
    finally:
        server.drop()
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--targets", default="plain,galera")
    parser.add_argument("--galera-limits", action="store_true",
                        help="wsrep_max_ws_rows = 10000, wsrep_max_ws_size = 1 MiB")
    args = parser.parse_args()
    results: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="cellctl-bench-") as tmp:
        for target in args.targets.split(","):
            if target == "plain":
                results[target] = bench(target, "mysql", args.hosts, args.instances, Path(tmp))
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
                                        args.instances, Path(tmp), limits,
                                        LIMITED_BATCH if args.galera_limits else None)
            finally:
                cluster.shutdown()
    for target, figures in results.items():
        for what, (seconds, least) in figures.items():
            print(f"{target}: {what} takes {ratio(seconds, least)} on this target")
    if "plain" in results and "galera" in results:
        for what in ("discover_hosts", "map_instances"):
            times = results["galera"][what][0] / results["plain"][what][0]
            print(f"{what}: Galera takes {times:.2f}x the plain server's time")


if __name__ == "__main__":
    main()
