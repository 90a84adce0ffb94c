"""Time ``list_hosts --status`` and ``service list`` over 100,000 hosts under db, mc and zk.

Seeds one cell with the hosts (a services row and a compute node each, mapped
by ``discover_hosts``), gives every host a live heartbeat where its driver
keeps it (``last_seen_up`` for db; Nova's memcached value for mc, written in
bulk with the same bytes ``service heartbeat`` writes; ``ZKMembers`` plus one
ephemeral child per host for zk, held by this process's session), then runs
the real commands as subprocesses and prints wall time and the child's peak
RSS. Every host must come out up. Creates and removes its own databases,
memcached keys and znode prefix; uses the shared memcached and ZooKeeper.

    .venv/bin/python benchmarks/bench_servicegroup.py [--hosts 100000] [--drivers db,mc,zk]
        [--backend sqlite|mysql]
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


def cellctl_to_file(env: dict[str, str], out: Path, *args: str) -> tuple[float, float, str]:
    """Run cellctl with its (large) stdout in a file; (seconds, peak RSS MiB, stdout)."""
    with out.open("w") as stdout, out.with_suffix(".err").open("w") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "cellctl", *args],
                                env={**os.environ, **env}, stdout=stdout, stderr=stderr)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"cellctl {' '.join(args)} exited {code}: "
                         f"{out.with_suffix('.err').read_text().strip()}")
    return seconds, usage.ru_maxrss / 1024, out.read_text()


def run(env: dict[str, str], hosts: int, driver: str, conf: Path, repeat: int = 1) -> None:
    figures = []
    commands = [(["list_hosts", "--status"], "state"), (["service", "list"], "state")] * repeat
    for args, key in commands:
        seconds, rss, stdout = cellctl_to_file(env, conf.with_name("out.json"), "--config-file",
                                               str(conf), *args, "--format", "json")
        rows = json.loads(stdout)
        up = sum(1 for r in rows if r[key] == "up")
        if up != hosts:
            raise SystemExit(f"{driver}: {' '.join(args)} shows {up} of {hosts} up")
        figures.append(f"{' '.join(args)} {seconds:6.2f} s, peak RSS {rss:4.0f} MiB")
    print(f"{driver:3} {hosts:>7} hosts | " + " | ".join(figures), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100_000)
    parser.add_argument("--drivers", default="db,mc,zk")
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "mysql"])
    parser.add_argument("--repeat", type=int, default=1, help="Run each command this often.")
    args = parser.parse_args()
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
                  f"(seed {seeded:.1f} s)", flush=True)
            prefix = f"/cellctl-bench-{uuid.uuid4().hex[:8]}"
            conf = workdir / "nova.conf"
            conf.write_text(f"[cache]\nenabled = true\nbackend = dogpile.cache.memcached\n"
                            f"memcache_servers = {MEMCACHED}\n"
                            f"[zookeeper]\naddress = {ZOOKEEPER}\nsg_prefix = {prefix}\n")
            for driver in args.drivers.split(","):
                denv = {**env, "CELLCTL_SERVICEGROUP_DRIVER": driver}
                start = time.perf_counter()
                if driver == "db":
                    beat_db(dbs)
                    run(denv, args.hosts, driver, conf, args.repeat)
                elif driver == "mc":
                    keys = beat_mc(hosts)
                    print(f"    (mc: {len(keys)} heartbeats written in "
                          f"{time.perf_counter() - start:.1f} s)", flush=True)
                    try:
                        run(denv, args.hosts, driver, conf, args.repeat)
                    finally:
                        unbeat_mc(keys)
                elif driver == "zk":
                    zk = beat_zk(hosts, prefix)
                    print(f"    (zk: {len(hosts)} members joined in "
                          f"{time.perf_counter() - start:.1f} s)", flush=True)
                    try:
                        run(denv, args.hosts, driver, conf, args.repeat)
                    finally:
                        unbeat_zk(zk, hosts, prefix)
        finally:
            dbs.drop()


if __name__ == "__main__":
    main()
