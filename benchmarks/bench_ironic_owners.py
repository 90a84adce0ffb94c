"""Time ``cellctl ironic owners`` on nodes paged from a real Ironic API.

Starts a real Ironic (``tests/ironic_env.py``: ironic from PyPI, noauth, fake
hardware, its own MariaDB database) and fills its ``nodes`` table with
``--nodes`` copies of one node made through the API (bulk SQL: creating
100,000 nodes one POST at a time would take an hour; what is measured is
reading them back through the API). One cell (SQLite) with ``--services``
Ironic compute services, all up, and one instance on every tenth node. Two
deployments, one nova.conf per service in a directory:

- ``shard``: service ``i`` has ``[ironic] shard = s<i>``, node ``n`` is in
  shard ``s<n mod services>``: one filtered listing per shard (as each
  service's driver asks; the summary needs no full listing);
- ``plain``: no shard, no group: one full listing, every service's ring.

Per deployment, alternated ``--repeat`` times (best of each printed): the
summary (``ironic owners --services``, JSON: one row per service) beside its
floor, measured in the same run: the same paged GETs cellctl sends (the same
``fields``, filters and microversion, following Ironic's ``next`` links, with
``requests`` and nothing else: ``--floor``); the target is the floor plus at
most 1 s. ``--listing`` also times the full node listing (JSON, every node).
Creates and drops its own databases; stops its Ironic.

    .venv/bin/python benchmarks/bench_ironic_owners.py [--nodes 100000]
        [--services 200] [--deployments shard,plain] [--repeat 2] [--listing]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ironic_env import IronicService, ironic_venv
from measure import Child

from cellctl import migrate
from cellctl.clock import utcnow
from cellctl.db import create_engine
from cellctl.tables.cell import compute_nodes, services
from cellctl.tables.rows import compute_node_row, insert_fake_instances, service_row

MYSQL = os.environ.get("CELLCTL_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
CHUNK = 5_000
INSTANCE_EVERY = 10


def cellctl(env: dict[str, str], *args: str) -> tuple[float, float, str, float]:
    """Wall seconds, peak RSS (MiB), stdout and CPU seconds (user + system)."""
    profile = os.environ.get("BENCH_PROFILE")  # a file: cProfile the command into it
    run = ["-m", "cProfile", "-o", profile] if profile else []
    return measured(env, sys.executable, *run, "-m", "cellctl", *args)


def admin(*statements: str) -> None:
    engine = sa.create_engine(MYSQL)
    with engine.connect() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def fill_ironic(ironic: IronicService, database: str, nodes: int, shards: int,
                instance_of: dict[int, str]) -> list[str]:
    """``nodes`` copies of one API-made node, straight into Ironic's table."""
    template = str(uuid.uuid4())
    ironic.create_node(uuid=template)
    engine = sa.create_engine(f"{MYSQL}/{database}")
    table = sa.Table("nodes", sa.MetaData(), autoload_with=engine)
    made = []
    with engine.begin() as conn:
        row = dict(conn.execute(sa.select(table).where(table.c.uuid == template)).one()._mapping)
        conn.execute(table.delete().where(table.c.uuid == template))
        row.pop("id")
        for first in range(0, nodes, CHUNK):
            batch = []
            for n in range(first, min(first + CHUNK, nodes)):
                node = str(uuid.uuid4())
                made.append(node)
                batch.append({**row, "uuid": node, "name": None, "shard": f"s{n % shards}",
                              "instance_uuid": instance_of.get(n)})
            conn.execute(table.insert(), batch)
    engine.dispose()
    return made


def seed_cell(workdir: Path, hosts: list[str], instances: dict[int, str], nodes: int
              ) -> tuple[str, str]:
    api_url = f"sqlite:///{workdir / 'api.sqlite'}"
    cell_url = f"sqlite:///{workdir / 'cell.sqlite'}"
    for url, kind in ((api_url, "api"), (cell_url, "cell")):
        engine = create_engine(url, must_exist=False)
        migrate.sync(engine, kind)
        engine.dispose()
    engine = sa.create_engine(cell_url)
    now = utcnow()
    with engine.begin() as conn:
        rows = [service_row(h, "nova-compute", now=now) for h in hosts]
        for row in rows:
            row["last_seen_up"], row["created_at"] = now, now - datetime.timedelta(days=1)
        conn.execute(services.insert(), rows)
        ids = dict(conn.execute(sa.select(services.c.host, services.c.id)).all())
        conn.execute(compute_nodes.insert(), [
            compute_node_row(h, ids[h], now=now, hypervisor_type="ironic",
                             hypervisor_hostname=str(uuid.uuid4())) for h in hosts])
    by_host: dict[str, list[int]] = {}
    for n in instances:
        by_host.setdefault(hosts[n % len(hosts)], []).append(n)
    for host, numbers in by_host.items():
        insert_fake_instances(engine, len(numbers), host=host,
                              nodes=[f"node-{n}" for n in numbers])
    with engine.begin() as conn:  # the instance UUIDs Ironic's nodes point at
        made = conn.execute(sa.text("SELECT uuid, node FROM instances")).all()
    engine.dispose()
    for instance, node in made:
        instances[int(node.split("-")[1])] = instance
    return api_url, cell_url


def floor(url: str, shards: int) -> None:
    """The GETs ``ironic owners --services`` sends and nothing else: every node, or
    (``shards`` > 0) each shard's nodes, page by page, with cellctl's fields and
    microversion."""
    from urllib.parse import parse_qs, urljoin, urlparse

    import requests

    from cellctl.ironic.nodes import FIELDS

    session = requests.Session()
    top = session.get(url + "/", headers={"Accept": "application/json"}, timeout=60).json()
    version = min(top["default_version"]["version"], "1.109",
                  key=lambda v: tuple(int(x) for x in v.split(".")))
    headers = {"Accept": "application/json", "X-OpenStack-Ironic-API-Version": version,
               "OpenStack-API-Version": f"baremetal {version}"}
    listed = 0
    for shard in [f"s{i}" for i in range(shards)] or [None]:
        params: dict[str, object] = {"fields": ",".join(FIELDS)}
        if shard is not None:
            params["shard"] = shard
        uri: str | None = url + "/v1/nodes"
        while uri:
            data = session.get(uri, params=params, headers=headers, timeout=60).json()
            listed += len(data["nodes"])
            uri = data.get("next")
            if uri:
                parts = urlparse(uri)
                params.update(parse_qs(parts.query))
                uri = urljoin(uri, parts.path)
    print(listed)


def measured(env: dict[str, str], *argv: str) -> tuple[float, float, str, float]:
    """Run ``argv`` (``measure.Child``); its seconds, peak RSS (MiB), output and CPU seconds."""
    child = Child(list(argv), env).expect(0)
    return child.seconds, child.rss_mib, child.out, child.cpu


def bench(nodes: int, service_count: int, deployments: list[str], workdir: Path, *,
          repeat: int = 2, listing: bool = False) -> None:
    hosts = [f"ironic-{n:03d}" for n in range(service_count)]
    instances: dict[int, str] = {n: "" for n in range(0, nodes, INSTANCE_EVERY)}
    started = time.perf_counter()
    api_url, cell_url = seed_cell(workdir, hosts, instances, nodes)
    database = f"cellctl_bench_ironic_{uuid.uuid4().hex[:8]}"
    admin(f"CREATE DATABASE {database} CHARACTER SET utf8")
    ironic = IronicService(ironic_venv(), workdir / "ironic",
                           f"{MYSQL}/{database}?charset=utf8")
    try:
        ironic.start()
        fill_ironic(ironic, database, nodes, service_count, instances)
        seeded = time.perf_counter() - started
        env = {"CELLCTL_API_DATABASE_CONNECTION": api_url,
               "CELLCTL_DATABASE_CONNECTION": cell_url, "CELLCTL_TRANSPORT_URL": "memory:///",
               "CELLCTL_STATE_DIR": str(workdir), "CELLCTL_SERVICE_DOWN_TIME": "3600"}
        cellctl(env, "create_cell", "--name", "bench")
        conf = workdir / "cellctl.conf"
        conf.write_text(f"[ironic]\nauth_type = none\nendpoint_override = {ironic.url}\n")
        for deployment in deployments:
            confs = workdir / deployment
            confs.mkdir()
            for i, host in enumerate(hosts):
                shard = f"shard = s{i}\n" if deployment == "shard" else ""
                (confs / f"{host}.conf").write_text(f"[ironic]\n{shard}")
            summaries, floors = [], []
            shards = service_count if deployment == "shard" else 0
            for _ in range(repeat):
                floors.append(measured({}, sys.executable, __file__, "--floor", ironic.url,
                                       str(shards)))
                seconds, rss, out, cpu = cellctl(env, "--config-file", str(conf), "--format",
                                                 "json", "ironic", "owners", "--services",
                                                 "--service-config-dir", str(confs))
                rows = json.loads(out)
                if len(rows) != service_count or sum(
                        r["nodes_managed"] for r in rows) != nodes:
                    raise SystemExit(f"wrong summary: {len(rows)} services")
                summaries.append((seconds, rss, cpu))
            if int(min(floors)[2]) != nodes:
                raise SystemExit(f"the floor listed {min(floors)[2]} nodes")
            (summary, summary_rss, summary_cpu), (base, base_rss, _, base_cpu) = (
                min(summaries), min(floors))
            print(f"{deployment:6} {nodes:>7} nodes / {service_count} services (seeded in "
                  f"{seeded:5.1f} s) | --services best of {repeat}: {summary:6.2f} s, RSS "
                  f"{summary_rss:4.0f} MiB | floor (the same GETs) {base:6.2f} s, RSS "
                  f"{base_rss:4.0f} MiB | cellctl - floor = {summary - base:+5.2f} s | CPU "
                  f"{summary_cpu:5.2f} s vs {base_cpu:5.2f} s | all: "
                  f"{[round(s[0], 2) for s in summaries]} floors "
                  f"{[round(f[0], 2) for f in floors]}", flush=True)
            if not listing:
                continue
            seconds, rss, out, _ = cellctl(env, "--config-file", str(conf), "--format",
                                           "json", "ironic", "owners", "--service-config-dir",
                                           str(confs))
            rows = json.loads(out)
            if len(rows) != nodes:
                raise SystemExit(f"wrong result: {len(rows)} rows for {nodes} nodes")
            flags: dict[str, int] = {}
            for row in rows:
                for flag in row["flags"]:
                    flags[flag] = flags.get(flag, 0) + 1
            print(f"{deployment:6} {nodes:>7} nodes / {service_count} services | listing "
                  f"{seconds:6.2f} s = {nodes / seconds:6.0f} nodes/s, RSS {rss:4.0f} MiB | "
                  f"flags {dict(sorted(flags.items()))}", flush=True)
    finally:
        ironic.stop()
        admin(f"DROP DATABASE IF EXISTS {database}")


def main() -> None:
    if sys.argv[1:2] == ["--floor"]:
        floor(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--deployments", default="shard,plain")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--listing", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench(args.nodes, args.services, args.deployments.split(","), Path(tmp),
              repeat=args.repeat, listing=args.listing)


if __name__ == "__main__":
    main()
