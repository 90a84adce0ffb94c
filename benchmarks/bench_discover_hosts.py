"""Time ``cellctl discover_hosts`` on 100,000 new hosts in one cell, on SQLite and MariaDB.

Seeds the hosts (a services row and a compute node each, as ``service
register`` writes them) with bulk inserts, then runs the real command as a
subprocess, end to end, and prints hosts/s and the child's peak RSS. Also
times a second run (nothing new: the steady state of a periodic discovery)
and ``cellctl --help`` start-up. Creates and drops its own databases.

With ``--nova-manage PATH`` it also times the reference tool, nova-manage,
on the same kind of data on MariaDB (``--nova-hosts``, default 2,000: it
maps a few dozen hosts per second); Nova's models match cellctl's tables.

    .venv/bin/python benchmarks/bench_discover_hosts.py [--hosts 100000] [--backends sqlite,mysql]
        [--nova-manage /path/to/nova-manage [--nova-hosts 2000]]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from seeding import seed_compute_hosts

from cellctl import migrate
from cellctl.db import create_engine

MYSQL_SERVER = os.environ.get("CELLCTL_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
SEED_CHUNK = 10_000
# Never connected to: Nova only needs a transport driver it can load for the cell.
TRANSPORT_URL = "rabbit://guest:guest@127.0.0.1:5672/"


def cellctl(env: dict[str, str], *args: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run cellctl; return (seconds, peak RSS in MiB of that process, completed process)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cellctl", *args], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait4 gives this child's own rusage; RUSAGE_CHILDREN would mix in earlier ones.
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"cellctl {' '.join(args)} exited {code}: {err.strip()}")
    return seconds, usage.ru_maxrss / 1024, subprocess.CompletedProcess(args, code, out, err)


class Databases:
    """A fresh API and cell database on one backend, dropped by ``drop``."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.names = [f"cellctl_bench_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("api", "cell")]
        if backend == "sqlite":
            self.urls = [f"sqlite:///{workdir / (name + '.sqlite')}" for name in self.names]
        else:
            self._admin(*(f"CREATE DATABASE {name}" for name in self.names))
            self.urls = [f"{MYSQL_SERVER}/{name}" for name in self.names]
        self.api_url, self.cell_url = self.urls

    def _admin(self, *statements: str) -> None:
        engine = sa.create_engine(MYSQL_SERVER)
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        engine.dispose()

    def drop(self) -> None:
        if self.backend != "sqlite":
            self._admin(*(f"DROP DATABASE IF EXISTS {name}" for name in self.names))


def seed(dbs: Databases, hosts: int) -> float:
    """Create both schemas and ``hosts`` compute hosts; return the seconds it took."""
    start = time.perf_counter()
    for url, kind in ((dbs.api_url, "api"), (dbs.cell_url, "cell")):
        engine = create_engine(url, must_exist=False)
        migrate.sync(engine, kind)
        engine.dispose()
    seed_compute_hosts(dbs.cell_url, hosts, lambda n: f"compute-{n:06d}", SEED_CHUNK)
    return time.perf_counter() - start


def check(dbs: Databases, hosts: int) -> None:
    engine = sa.create_engine(dbs.api_url)
    with engine.connect() as conn:
        mapped = conn.execute(sa.text("SELECT count(*) FROM host_mappings")).scalar()
    engine.dispose()
    engine = sa.create_engine(dbs.cell_url)
    with engine.connect() as conn:
        unmarked = conn.execute(sa.text("SELECT count(*) FROM compute_nodes WHERE mapped <> 1"))
        left = unmarked.scalar()
    engine.dispose()
    if mapped != hosts or left != 0:
        raise SystemExit(f"wrong result: {mapped} mappings for {hosts} hosts, "
                         f"{left} nodes not marked mapped")


def bench(backend: str, hosts: int, workdir: Path) -> None:
    dbs = Databases(backend, workdir)
    try:
        seeded = seed(dbs, hosts)
        env = cellctl_env(dbs, workdir)
        cellctl(env, "create_cell", "--name", "bench")
        seconds, rss, _ = cellctl(env, "discover_hosts")
        check(dbs, hosts)
        again, again_rss, _ = cellctl(env, "discover_hosts")
        print(f"{backend:8} {hosts:>8} hosts  seeded in {seeded:6.1f} s | discover_hosts "
              f"{seconds:6.2f} s = {hosts / seconds:8.0f} hosts/s, peak RSS {rss:5.0f} MiB | "
              f"second run (nothing new) {again:5.2f} s, peak RSS {again_rss:4.0f} MiB",
              flush=True)
    finally:
        dbs.drop()


def cellctl_env(dbs: Databases, workdir: Path) -> dict[str, str]:
    return {"CELLCTL_API_DATABASE_CONNECTION": dbs.api_url,
            "CELLCTL_DATABASE_CONNECTION": dbs.cell_url,
            "CELLCTL_TRANSPORT_URL": TRANSPORT_URL, "CELLCTL_STATE_DIR": str(workdir)}


def bench_nova_manage(nova_manage: str, hosts: int, workdir: Path) -> None:
    dbs = Databases("mysql", workdir)
    try:
        seed(dbs, hosts)
        cellctl(cellctl_env(dbs, workdir), "create_cell", "--name", "bench")
        conf = workdir / "nova.conf"
        conf.write_text(f"[api_database]\nconnection = {dbs.api_url}\n"
                        f"[database]\nconnection = {dbs.cell_url}\n")
        runs = {}
        for action in ("list_cells", "discover_hosts"):  # list_cells: start-up alone
            start = time.perf_counter()
            subprocess.run([nova_manage, "--config-file", str(conf), "cell_v2", action],
                           check=True, capture_output=True)
            runs[action] = time.perf_counter() - start
        check(dbs, hosts)
        seconds = runs["discover_hosts"]
        print(f"{'nova-manage':11} mysql {hosts:>7} hosts | discover_hosts {seconds:6.1f} s = "
              f"{hosts / seconds:6.0f} hosts/s | start-up (list_cells) {runs['list_cells']:.1f} s",
              flush=True)
    finally:
        dbs.drop()


def startup(workdir: Path, runs: int = 5) -> None:
    env = {"CELLCTL_STATE_DIR": str(workdir)}
    times = [cellctl(env, "--help")[0] for _ in range(runs)]
    print(f"cellctl --help: median {statistics.median(times) * 1000:.0f} ms over {runs} runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,mysql")
    parser.add_argument("--nova-manage", metavar="PATH", help="Also time this nova-manage.")
    parser.add_argument("--nova-hosts", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cellctl-bench-") as tmp:
        startup(Path(tmp))
        for backend in args.backends.split(","):
            bench(backend, args.hosts, Path(tmp))
        if args.nova_manage:
            bench_nova_manage(args.nova_manage, args.nova_hosts, Path(tmp))


if __name__ == "__main__":
    main()
