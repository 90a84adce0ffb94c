"""Time ``cellctl discover_hosts`` on 100,000 new hosts in one cell against its floor,
on SQLite and MariaDB.

Seeds the hosts (a services row and a compute node each, as ``service
register`` writes them) with bulk inserts, then runs the real command as a
subprocess, end to end, and prints hosts/s and the child's peak RSS; beside
it, in the same run, the floor (``measure.discover_hosts_floor``: the nodes
streamed once, the mappings inserted in bulk, the nodes marked by id; a
process of its own, timed end to end) and the ratio. ``--repeat N``
alternates N runs of each, each into a fresh API database with the nodes
unmarked again, and keeps the best of each. Also times a second run
(nothing new: the steady state of a periodic discovery) and ``cellctl
--help`` start-up. Creates and drops its own databases.

With ``--nova-manage PATH`` it also times the reference tool, nova-manage,
on the same kind of data on MariaDB (``--nova-hosts``, default 2,000: it
maps a few dozen hosts per second); Nova's models match cellctl's tables.

    .venv/bin/python benchmarks/bench_discover_hosts.py [--hosts 100000] [--backends sqlite,mysql]
        [--repeat 3] [--nova-manage /path/to/nova-manage [--nova-hosts 2000]]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from measure import Child, Server, cellctl, floor, new_cell, ratio, scalar, seed_compute_hosts

from cellctl import migrate
from cellctl.db import create_engine

SEED_CHUNK = 10_000
# Never connected to: Nova only needs a transport driver it can load for the cell.
TRANSPORT_URL = "rabbit://guest:guest@127.0.0.1:5672/"
UNMARK = "UPDATE compute_nodes SET mapped = 0"


class Databases:
    """A cell database with ``hosts`` compute hosts, and API databases to map them into."""

    def __init__(self, backend: str, workdir: Path, hosts: int) -> None:
        self.server = Server(backend, workdir)
        self.workdir = workdir
        self.hosts = hosts
        self.cell_url = self.server.new("cell")
        self.api_url = ""
        start = time.perf_counter()
        engine = create_engine(self.cell_url, must_exist=False)
        migrate.sync(engine, "cell")
        engine.dispose()
        seed_compute_hosts(self.cell_url, hosts, lambda n: f"compute-{n:06d}", SEED_CHUNK)
        self.seeded = time.perf_counter() - start

    def fresh_api(self) -> dict[str, str]:
        """A new, synced API database (the cell's nodes unmarked again): cellctl's env."""
        self.api_url = self.server.new("api")
        self.cell_sql(UNMARK)
        env = self.env()
        cellctl(env, "api_db", "sync").expect(0)
        return env

    def env(self) -> dict[str, str]:
        return {"CELLCTL_API_DATABASE_CONNECTION": self.api_url,
                "CELLCTL_DATABASE_CONNECTION": self.cell_url,
                "CELLCTL_TRANSPORT_URL": TRANSPORT_URL, "CELLCTL_STATE_DIR": str(self.workdir)}

    def cell_sql(self, statement: str) -> None:
        engine = create_engine(self.cell_url)
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
        engine.dispose()

    def check(self) -> None:
        mapped = scalar(self.api_url, "SELECT count(*) FROM host_mappings")
        left = scalar(self.cell_url, "SELECT count(*) FROM compute_nodes WHERE mapped <> 1")
        if mapped != self.hosts or left != 0:
            raise SystemExit(f"wrong result: {mapped} mappings for {self.hosts} hosts, "
                             f"{left} nodes not marked mapped")


def bench(backend: str, hosts: int, repeat: int, workdir: Path) -> None:
    dbs = Databases(backend, workdir, hosts)
    try:
        runs: list[Child] = []
        floors: list[Child] = []
        for _ in range(repeat):  # alternated, so both see the same load
            dbs.fresh_api()
            floors.append(floor("discover_hosts", dbs.api_url, dbs.cell_url,
                                new_cell(dbs.api_url)))
            dbs.check()
            env = dbs.fresh_api()
            cellctl(env, "create_cell", "--name", "bench").expect(0)
            runs.append(cellctl(env, "discover_hosts").expect(0))
            dbs.check()
        again = cellctl(dbs.env(), "discover_hosts").expect(0)
        best, best_floor = (min(c, key=lambda child: child.seconds) for c in (runs, floors))
        print(f"{backend:8} {hosts:>8} hosts  seeded in {dbs.seeded:6.1f} s | discover_hosts "
              f"{best.seconds:6.2f} s = {hosts / best.seconds:8.0f} hosts/s, peak RSS "
              f"{best.rss_mib:5.0f} MiB | floor {best_floor.seconds:5.2f} s, peak RSS "
              f"{best_floor.rss_mib:4.0f} MiB: {ratio(best.seconds, best_floor.seconds)} "
              f"(best of {repeat}) | second run (nothing new) {again.seconds:5.2f} s, "
              f"peak RSS {again.rss_mib:4.0f} MiB", flush=True)
    finally:
        dbs.server.drop()


def bench_nova_manage(nova_manage: str, hosts: int, workdir: Path) -> None:
    dbs = Databases("mysql", workdir, hosts)
    try:
        cellctl(dbs.fresh_api(), "create_cell", "--name", "bench").expect(0)
        conf = workdir / "nova.conf"
        conf.write_text(f"[api_database]\nconnection = {dbs.api_url}\n"
                        f"[database]\nconnection = {dbs.cell_url}\n")
        runs = {}
        for action in ("list_cells", "discover_hosts"):  # list_cells: start-up alone
            start = time.perf_counter()
            subprocess.run([nova_manage, "--config-file", str(conf), "cell_v2", action],
                           check=True, capture_output=True)
            runs[action] = time.perf_counter() - start
        dbs.check()
        seconds = runs["discover_hosts"]
        print(f"{'nova-manage':11} mysql {hosts:>7} hosts | discover_hosts {seconds:6.1f} s = "
              f"{hosts / seconds:6.0f} hosts/s | start-up (list_cells) {runs['list_cells']:.1f} s",
              flush=True)
    finally:
        dbs.server.drop()


def startup(workdir: Path, runs: int = 5) -> None:
    env = {"CELLCTL_STATE_DIR": str(workdir)}
    times = [cellctl(env, "--help").expect(0).seconds for _ in range(runs)]
    print(f"cellctl --help: median {statistics.median(times) * 1000:.0f} ms over {runs} runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,mysql")
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate this many runs of discover_hosts and the floor")
    parser.add_argument("--nova-manage", metavar="PATH", help="Also time this nova-manage.")
    parser.add_argument("--nova-hosts", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cellctl-bench-") as tmp:
        startup(Path(tmp))
        for backend in args.backends.split(","):
            bench(backend, args.hosts, args.repeat, Path(tmp))
        if args.nova_manage:
            bench_nova_manage(args.nova_manage, args.nova_hosts, Path(tmp))


if __name__ == "__main__":
    main()
