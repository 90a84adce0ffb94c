"""Rows written straight into cell and API databases, for tests that need a populated cloud."""

from __future__ import annotations

import datetime
import uuid as uuidlib
from collections.abc import Iterable

import sqlalchemy as sa

from cellctl.tables.api import cell_mappings, host_mappings, instance_mappings
from cellctl.tables.cell import compute_nodes

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0)


def _insert(url: str, table: sa.Table, rows: list[dict]) -> None:
    if not rows:
        return
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
    finally:
        engine.dispose()


def add_compute_nodes(url: str, hosts: Iterable[str], *, deleted: bool = False) -> None:
    """One compute node per host (deleted ones get ``deleted = id`` as Nova does)."""
    hosts = list(hosts)
    rows = []
    for host in hosts:
        rows.append({
            "created_at": NOW, "host": host, "hypervisor_hostname": f"{host}.node",
            "uuid": str(uuidlib.uuid4()), "vcpus": 8, "memory_mb": 1024, "local_gb": 10,
            "vcpus_used": 0, "memory_mb_used": 0, "local_gb_used": 0,
            "hypervisor_type": "fake", "hypervisor_version": 1, "cpu_info": "{}",
            "deleted": 0, "mapped": 0,
        })
    _insert(url, compute_nodes, rows)
    if deleted:
        _soft_delete(url, compute_nodes, compute_nodes.c.host.in_(hosts))


def _soft_delete(url: str, table: sa.Table, where: sa.ColumnElement) -> None:
    """As Nova deletes: ``deleted = id``."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(table.update().where(where).values(deleted=table.c.id))
    finally:
        engine.dispose()


def cell_id(api_url: str, cell_uuid: str) -> int:
    engine = sa.create_engine(api_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(cell_mappings.c.id)
                                .where(cell_mappings.c.uuid == cell_uuid)).scalar_one()
    finally:
        engine.dispose()


def map_hosts(api_url: str, cell_uuid: str, hosts: Iterable[str]) -> None:
    cid = cell_id(api_url, cell_uuid)
    _insert(api_url, host_mappings, [{"cell_id": cid, "host": h} for h in hosts])


def map_instances(api_url: str, cell_uuid: str, uuids: Iterable[str]) -> None:
    cid = cell_id(api_url, cell_uuid)
    _insert(api_url, instance_mappings, [
        {"cell_id": cid, "instance_uuid": u, "project_id": "p", "user_id": "u"} for u in uuids])
