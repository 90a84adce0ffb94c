"""Time ``cellctl ironic ring`` on 100,000 Ironic nodes over 100 services in one cell.

Seeds one cell as Nova's Ironic driver leaves it (``service register
--hypervisor-type ironic`` rows, in bulk): 100 nova-compute services, 95 up
and 5 down, reporting 100,000 nodes (``hypervisor_hostname`` = a node
UUID), 100 nodes also reported by a second service (duplicated), and one
instance on every tenth node; each node reported by its owner on the ring of
all 100 (the steady state before the 5 died). Then runs the real command as a subprocess, end
to end, and prints the wall time and the child's peak RSS of: the full listing
(JSON, every node), ``--summary`` beside its floor measured in the same run
(a plain read of the services and nodes, one ring look-up per node, counted
per host: ``floor``), and the what-if ``--without`` of one service. Run at
two sizes (``--nodes 10000,100000``) to see memory stay flat
where the output does not grow (summary, what-if) and grow only by the output
rows where it does (the listing). Creates and drops its own databases.

    .venv/bin/python benchmarks/bench_ironic_ring.py [--nodes 10000,100000]
        [--services 100] [--backends sqlite,mysql,postgresql]
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
from measure import Child, best, cellctl, times

from cellctl import migrate
from cellctl.clock import utcnow
from cellctl.db import create_engine
from cellctl.hashring import nova_ring
from cellctl.tables.cell import compute_nodes, instances, services
from cellctl.tables.rows import compute_node_row, insert_fake_instances, service_row

SERVERS = {
    "mysql": os.environ.get("CELLCTL_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306"),
    "postgresql": os.environ.get("CELLCTL_TEST_POSTGRESQL",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432"),
}
SEED_CHUNK = 10_000
DOWN_SERVICES = 5
DUPLICATED = 100
INSTANCE_EVERY = 10


class Databases:
    """A fresh API and cell database on one backend, dropped by ``drop``."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.names = [f"cellctl_bench_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("api", "cell")]
        if backend == "sqlite":
            self.urls = [f"sqlite:///{workdir / (name + '.sqlite')}" for name in self.names]
        else:
            self._admin(*(f"CREATE DATABASE {name}" for name in self.names))
            self.urls = [f"{SERVERS[backend]}/{name}" for name in self.names]
        self.api_url, self.cell_url = self.urls

    def _admin(self, *statements: str) -> None:
        server = SERVERS[self.backend]
        if self.backend == "postgresql":
            engine = sa.create_engine(server + "/postgres", isolation_level="AUTOCOMMIT")
        else:
            engine = sa.create_engine(server)
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        engine.dispose()

    def drop(self) -> None:
        if self.backend == "postgresql":
            self._admin(*(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" for name in self.names))
        elif self.backend != "sqlite":
            self._admin(*(f"DROP DATABASE IF EXISTS {name}" for name in self.names))


def seed(dbs: Databases, nodes: int, service_count: int) -> float:
    """Both schemas, the services, their nodes and instances; the seconds it took."""
    start = time.perf_counter()
    for url, kind in ((dbs.api_url, "api"), (dbs.cell_url, "cell")):
        engine = create_engine(url, must_exist=False)
        migrate.sync(engine, kind)
        engine.dispose()
    engine = sa.create_engine(dbs.cell_url)
    now = utcnow()
    hosts = [f"ironic-{n:03d}" for n in range(service_count)]
    node_uuids = [str(uuid.uuid4()) for _ in range(nodes)]
    with engine.begin() as conn:
        rows = [service_row(h, "nova-compute", now=now) for h in hosts]
        for n, row in enumerate(rows):
            down = n < DOWN_SERVICES
            row["last_seen_up"] = now - datetime.timedelta(days=1) if down else now
            row["created_at"] = now - datetime.timedelta(days=2)
        conn.execute(services.insert(), rows)
        ids = dict(conn.execute(sa.select(services.c.host, services.c.id)).all())
        # Steady state before the down services died: each node reported by its owner.
        ring = nova_ring(hosts)
        spelled = {h.lower(): h for h in hosts}
        reporter = {node: spelled[ring.owner(node) or hosts[0]] for node in node_uuids}
        for first in range(0, nodes, SEED_CHUNK):
            chunk = node_uuids[first:first + SEED_CHUNK]
            conn.execute(compute_nodes.insert(), [
                compute_node_row(reporter[node], ids[reporter[node]], now=now,
                                 hypervisor_type="ironic", hypervisor_hostname=node, uuid=node)
                for node in chunk])
        twins = node_uuids[:DUPLICATED]
        conn.execute(compute_nodes.insert(), [
            compute_node_row(hosts[-1], ids[hosts[-1]], now=now, hypervisor_type="ironic",
                             hypervisor_hostname=node)
            for node in twins if reporter[node] != hosts[-1]])
    # An instance on every tenth node, run by the node's reporter (grouped by host).
    with_instance = node_uuids[::INSTANCE_EVERY]
    for host in hosts:
        mine = [node for node in with_instance if reporter[node] == host]
        if mine:
            insert_fake_instances(engine, len(mine), host=host, nodes=mine)
    if dbs.backend == "postgresql":
        # Statistics, as autovacuum gathers them on a real cloud: without them PostgreSQL
        # plans the floor's "node IN (SELECT ...)" as a nested loop (quadratic).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return time.perf_counter() - start


def bench(backend: str, nodes: int, service_count: int, workdir: Path, *,
          repeat: int = 1, summary_only: bool = False, keep: bool = False) -> None:
    dbs = Databases(backend, workdir)
    try:
        seeded = seed(dbs, nodes, service_count)
        env = {"CELLCTL_API_DATABASE_CONNECTION": dbs.api_url,
               "CELLCTL_DATABASE_CONNECTION": dbs.cell_url,
               "CELLCTL_TRANSPORT_URL": "memory:///", "CELLCTL_STATE_DIR": str(workdir),
               # the seeded heartbeats must not age out while the benchmark runs
               "CELLCTL_SERVICE_DOWN_TIME": "3600"}
        cellctl(env, "create_cell", "--name", "bench").expect(0)
        if keep:
            print(" ".join(f"{k}={v}" for k, v in env.items()), flush=True)
        if summary_only:
            compare_summary(env, dbs, backend, nodes, service_count, repeat)
            if keep:
                input("databases kept; press Enter to drop them ")
            return
        listing = cellctl(env, "--format", "json", "ironic", "ring").expect(0)
        rows = json.loads(listing.out)
        if len(rows) != nodes:
            raise SystemExit(f"wrong result: {len(rows)} rows for {nodes} nodes")
        states: dict[str, int] = {}
        for row in rows:
            states[row["state"]] = states.get(row["state"], 0) + 1
        del rows, listing.out
        what_if = cellctl(env, "--format", "json", "ironic", "ring",
                          "--without", f"ironic-{service_count - 1:03d}").expect(0)
        moving = len(json.loads(what_if.out))
        table = cellctl(env, "ironic", "ring").expect(0)  # the default format
        print(f"{backend:10} {nodes:>7} nodes / {service_count} services (seeded in "
              f"{seeded:5.1f} s) | listing {listing.seconds:5.2f} s = "
              f"{nodes / listing.seconds:7.0f} nodes/s, RSS {listing.rss_mib:4.0f} MiB | "
              f"--without one {what_if.seconds:5.2f} s ({moving} would move), RSS "
              f"{what_if.rss_mib:4.0f} MiB | listing as a table {table.seconds:5.2f} s, RSS "
              f"{table.rss_mib:4.0f} MiB | states "
              f"{dict(sorted(states.items()))}", flush=True)
        compare_summary(env, dbs, backend, nodes, service_count, repeat)
    finally:
        dbs.drop()


def compare_summary(env: dict[str, str], dbs: Databases, backend: str, nodes: int,
                    service_count: int, repeat: int) -> None:
    """``--summary`` and its floors, alternated ``repeat`` times; the best of each.

    The floor gives the same answer (checked); the rows-only floor (what earlier
    figures were against) reads the node rows and looks every row up in the ring,
    which is not the answer (a node with an instance is its instance's host's; a
    node reported twice counts once), so it is printed for comparison only."""
    summaries: list[Child] = []
    floors: list[Child] = []
    rows_only: list[Child] = []
    for _ in range(repeat):
        summaries.append(cellctl(env, "--format", "json", "ironic", "ring", "--summary")
                         .expect(0))
        answer = {row["host"]: [row["nodes_reported"], row["nodes_owned"]]
                  for row in json.loads(summaries[-1].out)}
        if len(answer) != service_count:
            raise SystemExit("wrong summary")
        floors.append(Child([sys.executable, __file__, "--floor", dbs.cell_url]).expect(0))
        if json.loads(floors[-1].out) != answer:
            raise SystemExit(f"the floor's answer differs from cellctl's: "
                             f"{floors[-1].out[:300]}")
        rows_only.append(Child([sys.executable, __file__, "--floor-rows", dbs.cell_url])
                         .expect(0))
    summary, base, rows = best(summaries), best(floors), best(rows_only)
    print(f"{backend:10} {nodes:>7} nodes / {service_count} services | --summary best of "
          f"{repeat}: {summary.seconds:5.2f} s, RSS {summary.rss_mib:4.0f} MiB | floor (same "
          f"answer) {base.seconds:5.2f} s, RSS {base.rss_mib:4.0f} MiB: "
          f"{times(summary.seconds, base.seconds)}, {times(summary.rss_mib, base.rss_mib)} | "
          f"rows-only floor {rows.seconds:5.2f} s, RSS {rows.rss_mib:4.0f} MiB: "
          f"{times(summary.seconds, rows.seconds)} | all: summaries "
          f"{[round(c.seconds, 2) for c in summaries]} floors "
          f"{[round(c.seconds, 2) for c in floors]} "
          f"rows-only {[round(c.seconds, 2) for c in rows_only]}", flush=True)


def floor(cell_url: str) -> None:
    """The least work for --summary's answer on this benchmark's cell (all services
    enabled, none forced down, hosts lower-case): the live nova-compute services, the
    live Ironic rows (one query) and the live instances on them (one query, a
    subquery of the rows), with the plain driver; Nova's ring over the services seen
    up within the benchmark's service_down_time; each node once: its instance's host,
    else its ring owner. Prints host -> [nodes reported, nodes owned] as JSON."""
    engine = sa.create_engine(cell_url)
    cutoff = utcnow() - datetime.timedelta(seconds=3600)
    cn = compute_nodes
    live = (cn.c.hypervisor_type == "ironic", cn.c.deleted == 0,
            cn.c.hypervisor_hostname.is_not(None))
    with engine.connect() as conn:
        hosts = list(conn.execute(sa.select(services.c.host, services.c.last_seen_up).where(
            services.c.deleted == 0, services.c.binary == "nova-compute")))
        ring = nova_ring(host for host, seen in hosts if seen is not None and seen >= cutoff)
        on_node: dict[str, str] = {}
        for node, host in conn.execute(
                sa.select(instances.c.node, instances.c.host)
                .where(instances.c.deleted == 0,
                       instances.c.node.in_(sa.select(cn.c.hypervisor_hostname).where(*live)))
                .order_by(instances.c.id)):
            on_node.setdefault(node, host)
        reported = {host: 0 for host, _ in hosts}
        owned = dict(reported)
        seen_nodes: set[str] = set()
        for node, host in conn.execute(sa.select(cn.c.hypervisor_hostname, cn.c.host)
                                       .where(*live)):
            reported[host] += 1
            if node not in seen_nodes:
                seen_nodes.add(node)
                owner = on_node.get(node) or ring.owner(node)
                owned[owner] += 1
    engine.dispose()
    print(json.dumps({host: [reported[host], owned[host]] for host in reported}))


def floor_rows(cell_url: str) -> None:
    """The rows-only floor of earlier figures (not the answer): the live services and
    every live row looked up in the ring over the up ones, counted per host."""
    engine = sa.create_engine(cell_url)
    cutoff = utcnow() - datetime.timedelta(seconds=3600)
    with engine.connect() as conn:
        up = [host for host, seen in conn.execute(
            sa.select(services.c.host, services.c.last_seen_up).where(
                services.c.deleted == 0, services.c.binary == "nova-compute"))
            if seen is not None and seen >= cutoff]
        ring = nova_ring(up)
        owned: dict[str | None, int] = {}
        for (node,) in conn.execute(sa.select(compute_nodes.c.hypervisor_hostname)
                                    .where(compute_nodes.c.deleted == 0)):
            owner = ring.owner(node)
            owned[owner] = owned.get(owner, 0) + 1
    engine.dispose()
    print(len(owned))


def main() -> None:
    if sys.argv[1:2] == ["--floor"]:
        floor(sys.argv[2])
        return
    if sys.argv[1:2] == ["--floor-rows"]:
        floor_rows(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="10000,100000")
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,mysql,postgresql")
    parser.add_argument("--summary-only", action="store_true",
                        help="Only --summary against its floor, alternated --repeat times.")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true",
                        help="Print the environment and wait before dropping the databases.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cellctl-bench-") as tmp:
        for backend in args.backends.split(","):
            for nodes in (int(n) for n in args.nodes.split(",")):
                bench(backend, nodes, args.services, Path(tmp), repeat=args.repeat,
                      summary_only=args.summary_only, keep=args.keep)


if __name__ == "__main__":
    main()
