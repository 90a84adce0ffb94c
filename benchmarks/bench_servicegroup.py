"""Time ``list_hosts --status`` and ``service list`` over 100,000 hosts under db, mc and
zk, JSON and table, against their floor measured in the same run.

Seeds one cell with the hosts (a services row and a compute node each, mapped
by ``discover_hosts``), gives every host a live heartbeat where its driver
keeps it (``last_seen_up`` for db; Nova's memcached value for mc, written in
bulk with the same bytes ``service heartbeat`` writes; ``ZKMembers`` plus one
ephemeral child per host for zk, held by this process's session; db and mc
heartbeats are written again before each round), then runs the real command
and its floor (``floor_servicegroup.py``: the least work for the same answer
with the same driver) as subprocesses, alternately, ``--repeat`` times each,
and prints the best wall time of each, its CPU time and peak RSS (VmHWM), and
the ratios. Both must write the same bytes and show every host up. Creates
and removes its own databases, memcached keys and znode prefix; uses the
shared memcached and ZooKeeper.

    .venv/bin/python benchmarks/bench_servicegroup.py [--hosts 100000] [--drivers db,mc,zk]
        [--formats json,table] [--backend sqlite|mysql] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).parent))
from bench_discover_hosts import Databases, cellctl, cellctl_env, seed

from cellctl.clock import utcnow
from cellctl.liveness.memcache import cache_key, heartbeat_value

MEMCACHED = "127.0.0.1:11211"
ZOOKEEPER = "127.0.0.1:2181"
CHUNK = 5000


def rename_hosts(dbs: Databases, tag: str) -> list[str]:
    """Give the seeded hosts this run's own names (the memcached keys are shared)."""
    engine = sa.create_engine(dbs.cell_url)
    with engine.begin() as conn:
        for table in ("services", "compute_nodes"):
            conn.execute(sa.text(f"UPDATE {table} SET host = :tag || host" if
                                 engine.dialect.name == "sqlite" else
                                 f"UPDATE {table} SET host = CONCAT(:tag, host)"), {"tag": tag})
        conn.execute(sa.text("UPDATE compute_nodes SET hypervisor_hostname = host"))
        hosts = [r[0] for r in conn.execute(sa.text("SELECT host FROM services ORDER BY id"))]
    engine.dispose()
    return hosts


def beat_db(dbs: Databases) -> None:
    engine = sa.create_engine(dbs.cell_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE services SET last_seen_up = :now, report_count = 1"),
                     {"now": utcnow()})
    engine.dispose()


def beat_mc(hosts: list[str]) -> list[str]:
    from pymemcache.client.base import Client

    value = heartbeat_value(0)  # dogpile.cache.memcached: protocol 0
    keys = [cache_key("compute", h) for h in hosts]
    client = Client(MEMCACHED, default_noreply=False)
    for start in range(0, len(keys), CHUNK):
        failed = client.set_many({k: value for k in keys[start:start + CHUNK]}, flags=1)
        if failed:
            raise SystemExit(f"memcached did not store {len(failed)} keys")
    client.close()
    return keys


def unbeat_mc(keys: list[str]) -> None:
    from pymemcache.client.base import Client

    client = Client(MEMCACHED)
    for start in range(0, len(keys), CHUNK):
        client.delete_many(keys[start:start + CHUNK])
    client.close()


def beat_zk(hosts: list[str], prefix: str) -> Any:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=ZOOKEEPER, timeout=30)
    zk.start(timeout=10)
    zk.ensure_path(f"{prefix}/compute")
    for start in range(0, len(hosts), CHUNK):
        chunk = hosts[start:start + CHUNK]
        for r in [zk.create_async(f"{prefix}/compute/{h}", b"ZKMembers") for h in chunk]:
            r.get(timeout=60)
        for r in [zk.create_async(f"{prefix}/compute/{h}/1", b"", ephemeral=True)
                  for h in chunk]:
            r.get(timeout=60)
    return zk


def unbeat_zk(zk: Any, hosts: list[str], prefix: str) -> None:
    for start in range(0, len(hosts), CHUNK):
        chunk = hosts[start:start + CHUNK]
        for r in [zk.delete_async(f"{prefix}/compute/{h}/1") for h in chunk]:
            r.get(timeout=60)
        for r in [zk.delete_async(f"{prefix}/compute/{h}") for h in chunk]:
            r.get(timeout=60)
    zk.delete(prefix, recursive=True)
    zk.stop()
    zk.close()


# Runs a module or script and records its peak RSS (VmHWM) at exit. Not wait4's
# ru_maxrss: on Linux a child started by fork/vfork + exec inherits the parent's
# high-water mark (this benchmark holds the seeded host names), so that figure is
# the larger of the two.
CHILD = """
import atexit, os, runpy, sys

def record_peak():
    peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(peak.split()[1])

atexit.register(record_peak)
target = sys.argv[1]
sys.argv = sys.argv[1:]
if target.endswith(".py"):
    runpy.run_path(target, run_name="__main__")
else:
    sys.argv[0] = target
    runpy.run_module(target, run_name="__main__", alter_sys=True)
"""
FLOOR = str(Path(__file__).with_name("floor_servicegroup.py"))
COMMANDS = {"hosts": ["list_hosts", "--status"], "services": ["service", "list"]}


def timed(env: dict[str, str], out: Path, *args: str) -> tuple[float, float, float]:
    """Run ``python -c CHILD *args`` with stdout in ``out``; (wall seconds, CPU seconds
    (user + system, of that process alone), peak RSS MiB)."""
    peak = out.with_suffix(".peak")
    with out.open("w") as stdout, out.with_suffix(".err").open("w") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=stdout,
                                stderr=stderr, env={**os.environ, **env,
                                                    "BENCH_PEAK_FILE": str(peak)})
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(args)} exited {code}: "
                         f"{out.with_suffix('.err').read_text().strip()[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, int(peak.read_text()) / 1024


def run(env: dict[str, str], hosts: int, driver: str, conf: Path, floor_args: list[str],
        formats: list[str], repeat: int, beat: Callable[[], Any]) -> None:
    """Each command and format: cellctl and its floor alternately, ``repeat`` times each
    (``beat`` first: heartbeats stay fresh); the best time and the peak RSS of each, their
    ratio, and that both wrote the same."""
    for fmt in formats:
        for command, words in COMMANDS.items():
            best: dict[str, tuple[float, float, float]] = {}
            for _ in range(repeat):
                beat()
                for who in ("cellctl", "floor"):
                    out = conf.with_name(f"{who}.out")
                    if who == "cellctl":
                        figures = timed(env, out, "cellctl", "--config-file", str(conf),
                                        "--format", fmt, *words)
                    else:
                        figures = timed(env, out, FLOOR, command, fmt, driver, *floor_args)
                    if who not in best or figures[0] < best[who][0]:  # the best wall time
                        best[who] = figures
            mine, floor = conf.with_name("cellctl.out"), conf.with_name("floor.out")
            same = mine.read_bytes() == floor.read_bytes()
            up = len(re.findall(r'"state": "up"' if fmt == "json" else r"\|\s+up\s+\|",
                                mine.read_text()))
            if not same or up != hosts:
                raise SystemExit(f"{driver} {fmt} {' '.join(words)}: {up} of {hosts} up, "
                                 f"output {'same as' if same else 'differs from'} the floor's")
            (wall, cpu, rss), (floor_wall, floor_cpu, floor_rss) = best["cellctl"], best["floor"]
            print(f"{driver:3} {fmt:5} {' '.join(words):20} cellctl {wall:6.2f} s "
                  f"(CPU {cpu:5.2f} s) {rss:4.0f} MiB | floor {floor_wall:6.2f} s "
                  f"(CPU {floor_cpu:5.2f} s) {floor_rss:4.0f} MiB | ratio "
                  f"{wall / floor_wall:4.2f}x (CPU {cpu / floor_cpu:4.2f}x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--drivers", default="db,mc,zk")
    parser.add_argument("--formats", default="json,table")
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "mysql"])
    parser.add_argument("--repeat", type=int, default=3,
                        help="Runs of each command and of its floor (the best counts).")
    args = parser.parse_args()
    formats = args.formats.split(",")
    with tempfile.TemporaryDirectory(prefix="cellctl-bench-sg-") as tmp:
        workdir = Path(tmp)
        dbs = Databases(args.backend, workdir)
        try:
            seeded = seed(dbs, args.hosts)
            hosts = rename_hosts(dbs, f"b{uuid.uuid4().hex[:6]}-")
            env = cellctl_env(dbs, workdir)
            cellctl(env, "create_cell", "--name", "bench")
            cellctl(env, "discover_hosts")
            print(f"{args.backend}: {args.hosts} hosts seeded and mapped "
                  f"(seed {seeded:.1f} s); best of {args.repeat}, cellctl and floor "
                  f"alternately", flush=True)
            prefix = f"/cellctl-bench-{uuid.uuid4().hex[:8]}"
            conf = workdir / "nova.conf"
            conf.write_text(f"[cache]\nenabled = true\nbackend = dogpile.cache.memcached\n"
                            f"memcache_servers = {MEMCACHED}\n"
                            f"[zookeeper]\naddress = {ZOOKEEPER}\nsg_prefix = {prefix}\n")
            floor_args = [dbs.api_url, "--memcached", MEMCACHED, "--zookeeper", ZOOKEEPER,
                          "--prefix", prefix]
            for driver in args.drivers.split(","):
                denv = {**env, "CELLCTL_SERVICEGROUP_DRIVER": driver}
                start = time.perf_counter()
                if driver == "db":
                    run(denv, args.hosts, driver, conf, floor_args, formats, args.repeat,
                        lambda: beat_db(dbs))
                elif driver == "mc":
                    keys = beat_mc(hosts)
                    print(f"    (mc: {len(keys)} heartbeats written in "
                          f"{time.perf_counter() - start:.1f} s)", flush=True)
                    try:
                        run(denv, args.hosts, driver, conf, floor_args, formats, args.repeat,
                            lambda: beat_mc(hosts))
                    finally:
                        unbeat_mc(keys)
                elif driver == "zk":
                    zk = beat_zk(hosts, prefix)
                    print(f"    (zk: {len(hosts)} members joined in "
                          f"{time.perf_counter() - start:.1f} s)", flush=True)
                    try:
                        run(denv, args.hosts, driver, conf, floor_args, formats, args.repeat,
                            lambda: None)
                    finally:
                        unbeat_zk(zk, hosts, prefix)
        finally:
            dbs.drop()


if __name__ == "__main__":
    main()
