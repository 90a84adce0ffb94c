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
and prints the best wall time of each, its CPU time and peak RSS, and
the ratios. Both must write the same bytes and show every host up. Creates
and removes its own databases, memcached keys and znode prefix; uses the
shared memcached and ZooKeeper.

    .venv/bin/python benchmarks/bench_servicegroup.py [--hosts 100000] [--drivers db,mc,zk]
        [--formats json,table] [--backend sqlite|mysql] [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from measure import Child, Server, best, cellctl, seed_compute_hosts, times

from cellctl import migrate
from cellctl.clock import utcnow
from cellctl.db import create_engine
from cellctl.liveness.memcache import cache_key, heartbeat_value

MEMCACHED = "127.0.0.1:11211"
ZOOKEEPER = "127.0.0.1:2181"
CHUNK = 5000


class Databases:
    """An API and a cell database with ``count`` compute hosts named for this run (the
    memcached keys are shared), on ``backend``; dropped by ``drop``."""

    def __init__(self, backend: str, workdir: Path, count: int) -> None:
        self.server = Server(backend, workdir)
        self.api_url, self.cell_url = self.server.new("api"), self.server.new("cell")
        start = time.perf_counter()
        for url, kind in ((self.api_url, "api"), (self.cell_url, "cell")):
            engine = create_engine(url, must_exist=False)
            migrate.sync(engine, kind)
            engine.dispose()
        tag = f"b{uuid.uuid4().hex[:6]}-compute-"
        self.hosts = [f"{tag}{n:06d}" for n in range(count)]
        seed_compute_hosts(self.cell_url, count, lambda n: self.hosts[n])
        self.seeded = time.perf_counter() - start
        self.env = {"CELLCTL_API_DATABASE_CONNECTION": self.api_url,
                    "CELLCTL_DATABASE_CONNECTION": self.cell_url,
                    "CELLCTL_TRANSPORT_URL": "memory:///",
                    "CELLCTL_STATE_DIR": str(workdir)}

    def drop(self) -> None:
        self.server.drop()


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


FLOOR = str(Path(__file__).with_name("floor_servicegroup.py"))
COMMANDS = {"hosts": ["list_hosts", "--status"], "services": ["service", "list"]}


def run(env: dict[str, str], hosts: int, driver: str, conf: Path, floor_args: list[str],
        formats: list[str], repeat: int, beat: Callable[[], Any]) -> None:
    """Each command and format: cellctl and its floor alternately, ``repeat`` times each
    (``beat`` first: heartbeats stay fresh); the best time and the peak RSS of each, their
    ratio, and that both wrote the same."""
    for fmt in formats:
        for command, words in COMMANDS.items():
            runs: dict[str, list[Child]] = {"cellctl": [], "floor": []}
            for _ in range(repeat):
                beat()
                runs["cellctl"].append(cellctl(env, "--config-file", str(conf), "--format",
                                               fmt, *words).expect(0))
                runs["floor"].append(Child([sys.executable, FLOOR, command, fmt, driver,
                                            *floor_args], env).expect(0))
            last, last_floor = runs["cellctl"][-1], runs["floor"][-1]  # after the same beat
            same = last.out == last_floor.out
            up = len(re.findall(r'"state": "up"' if fmt == "json" else r"\|\s+up\s+\|",
                                last.out))
            if not same or up != hosts:
                raise SystemExit(f"{driver} {fmt} {' '.join(words)}: {up} of {hosts} up, "
                                 f"output {'same as' if same else 'differs from'} the floor's")
            mine, floor = best(runs["cellctl"]), best(runs["floor"])
            print(f"{driver:3} {fmt:5} {' '.join(words):20} cellctl {mine.seconds:6.2f} s "
                  f"(CPU {mine.cpu:5.2f} s) {mine.rss_mib:4.0f} MiB | floor "
                  f"{floor.seconds:6.2f} s (CPU {floor.cpu:5.2f} s) {floor.rss_mib:4.0f} MiB | "
                  f"ratio {times(mine.seconds, floor.seconds)} "
                  f"(CPU {times(mine.cpu, floor.cpu)})", flush=True)


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
        dbs = Databases(args.backend, workdir, args.hosts)
        try:
            hosts, env = dbs.hosts, dbs.env
            cellctl(env, "create_cell", "--name", "bench").expect(0)
            cellctl(env, "discover_hosts").expect(0)
            print(f"{args.backend}: {args.hosts} hosts seeded and mapped "
                  f"(seed {dbs.seeded:.1f} s); best of {args.repeat}, cellctl and floor "
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
