"""Helpers for the host and service-group tests: clouds with cells, hosts seeded in bulk.

Hosts are seeded with cellctl's own row builders (what ``service register``
writes), in bulk statements, so thousands cost a fraction of a second.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from conftest import Cloud

from cellctl.clock import utcnow
from cellctl.ids import new_uuid
from cellctl.tables.cell import IRONIC, compute_nodes, services
from cellctl.tables.rows import compute_node_row, ironic_node_row, service_row
from cellctl.writes.transactions import insert_ignoring_duplicates

CELL0 = "00000000-0000-0000-0000-000000000000"
# A well-formed UUID no cell has (fixed: pytest-xdist needs the same test ids in every worker).
UNKNOWN_CELL = "6f1d3c1e-5b1a-4c55-9a53-0f3e9d6c2b11"
# A cell database nobody answers on; the password must never show.
DEAD_CELL_URL = "mysql+pymysql://nova:secretpw@127.0.0.1:1/nova"


def setup_cells(cloud: Cloud, extra_cells: int = 0, *, cell0: bool = False) -> list[str]:
    """Synced API and cell databases and cells ``cell1`` (the [database] one), ``cell2``...

    Returns the cells' UUIDs in order; ``cloud.cell_urls`` gets their database URLs.
    """
    cloud.ok("api_db", "sync")
    if cell0:
        cloud.ok("map_cell0")
    cloud.ok("db", "sync")
    urls = [cloud.cell_url]
    uuids = [_create_cell(cloud, "cell1", cloud.cell_url, cloud.transport_url)]
    for n in range(2, extra_cells + 2):
        url = cloud.factory.new(f"cell{n}")
        synced = cloud.run("db", "sync", env={"CELLCTL_DATABASE_CONNECTION": url})
        assert synced.exit_code == 0, synced.stderr
        urls.append(url)
        uuids.append(_create_cell(cloud, f"cell{n}", url, f"memory:///cell{n}"))
    cloud.cell_urls = urls
    return uuids


def _create_cell(cloud: Cloud, name: str, url: str, transport: str) -> str:
    result = cloud.ok("create_cell", "--name", name, "--database_connection", url,
                      "--transport-url", transport, "--verbose")
    return result.stdout.strip().splitlines()[-1]


def add_hosts(url: str, hosts: Iterable[str], *, with_services: bool = True,
              with_nodes: bool = True, created_at: datetime.datetime | None = None) -> None:
    """Seed compute hosts as ``service register`` would, in bulk."""
    hosts = list(hosts)
    now = created_at or utcnow()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            service_ids: dict[str, Any] = {}
            if with_services:
                conn.execute(services.insert(),
                             [service_row(h, "nova-compute", now=now) for h in hosts])
                service_ids = dict(conn.execute(
                    sa.select(services.c.host, services.c.id)
                    .where(services.c.host.in_(hosts))).all())
            if with_nodes:
                conn.execute(compute_nodes.insert(),
                             [compute_node_row(h, service_ids.get(h), now=now) for h in hosts])
    finally:
        engine.dispose()


def add_ironic_nodes(url: str, host: str, count: int) -> int:
    """``count`` new Ironic nodes reported by ``host``'s registered nova-compute service,
    the rows ``service register --nodes`` writes (``ironic_node_row``: new node UUIDs, each
    its row's own ``uuid``), in one bulk insert; how many nodes the host reports now.

    ``service register`` inserts duplicate-safe (``INSERT .. ON CONFLICT DO NOTHING
    RETURNING`` on PostgreSQL, where psycopg parses every 1000-row statement: 30,000
    nodes took 6-13 s there, about a third of that here). The command itself is tested
    in test_services.py and test_ironic_ring.py."""
    now = utcnow()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            service_id = conn.execute(
                sa.select(services.c.id).where(services.c.host == host,
                                               services.c.binary == "nova-compute",
                                               services.c.deleted == 0)).scalar_one()
            nodes = [new_uuid() for _ in range(count)]
            rows = [ironic_node_row(host, service_id, node, now=now, uuid=node)
                    for node in nodes]
            if conn.dialect.name == "mysql":  # cellctl's multi-row INSERT for PyMySQL
                insert_ignoring_duplicates(conn, compute_nodes, rows)
            else:  # psycopg pipelines a plain executemany
                conn.execute(compute_nodes.insert(), rows)
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(compute_nodes).where(
                    compute_nodes.c.host == host, compute_nodes.c.hypervisor_type == IRONIC,
                    compute_nodes.c.deleted == 0)).scalar_one())
    finally:
        engine.dispose()


def add_node(url: str, host: str, *, hypervisor: str | None = None,
             mapped: int | None = 0) -> str:
    """One more compute node of ``host`` (e.g. a second node of an ironic host)."""
    row = compute_node_row(host, None, now=utcnow())
    row.update(hypervisor_hostname=hypervisor or host, mapped=mapped)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(compute_nodes.insert(), [row])
    finally:
        engine.dispose()
    return str(row["uuid"])


def map_host(cloud: Cloud, host: str, cell_uuid: str) -> None:
    cloud.execute(cloud.api_url,
                  "INSERT INTO host_mappings (cell_id, host) "
                  "SELECT id, :h FROM cell_mappings WHERE uuid = :c", {"h": host, "c": cell_uuid})


def kill_cell(cloud: Cloud, cell_uuid: str) -> None:
    """Point the cell's mapping at a database nobody answers on (a stopped server)."""
    cloud.execute(cloud.api_url, "UPDATE cell_mappings SET database_connection = :u "
                  "WHERE uuid = :c", {"u": DEAD_CELL_URL, "c": cell_uuid})


def host_mappings(cloud: Cloud) -> dict[str, str]:
    """host -> cell UUID of every host mapping."""
    engine = sa.create_engine(cloud.api_url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text(
                "SELECT h.host, c.uuid FROM host_mappings h "
                "JOIN cell_mappings c ON c.id = h.cell_id")).all())
    finally:
        engine.dispose()


def node_flags(url: str) -> dict[str, Any]:
    """compute node uuid -> its ``mapped`` value."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(sa.text("SELECT uuid, mapped FROM compute_nodes")).all())
    finally:
        engine.dispose()


def cellctl_process(cloud: Cloud, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """The real ``cellctl`` as a separate process, bound to ``cloud``'s databases."""
    env = {**os.environ, **cloud.env}
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.Popen([sys.executable, "-m", "cellctl", *args], env=env, text=True,
                            **streams)
