"""Rows as Nova writes them, for cellctl's own writes, ``dev`` and the benchmarks.

``service_row`` and ``compute_node_row`` are what a freshly started Nova
service creates (``service register`` writes them); ``insert_fake_instances``
writes instance rows that look like Nova's (``dev add-instances``, benchmarks
and tests, on databases whose schema is cellctl's).
"""

from __future__ import annotations

import datetime
import hashlib
import uuid as uuidlib
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Engine

from cellctl.clock import utcnow
from cellctl.ids import new_uuid
from cellctl.paging import chunks
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.tables.cell import IRONIC, instances

# nova.objects.service.SERVICE_VERSION of Nova 34.0.0, which its services write.
SERVICE_VERSION = 74
INSTANCE_BATCH = 5_000  # fake instance rows per transaction
# Fake ownership: instances spread over a realistic number of projects and users.
PROJECTS = 100
USERS_PER_PROJECT = 10


def topic_for(binary: str) -> str:
    """Nova's topic of a service binary: ``nova-compute`` -> ``compute``."""
    return binary.removeprefix("nova-")


def service_row(host: str, binary: str, *, now: datetime.datetime) -> dict[str, Any]:
    """A ``services`` row as a freshly started Nova service creates it."""
    return {
        "host": host, "binary": binary, "topic": topic_for(binary), "report_count": 0,
        "disabled": False, "forced_down": False, "version": SERVICE_VERSION,
        "uuid": new_uuid(), "deleted": 0, "created_at": now,
    }


def compute_node_row(host: str, service_id: int | None, *, now: datetime.datetime,
                     hypervisor_type: str = "fake", hypervisor_hostname: str | None = None,
                     uuid: str | None = None) -> dict[str, Any]:
    """A ``compute_nodes`` row for ``host``'s (fake) hypervisor, not yet mapped.

    An Ironic node is ``hypervisor_type='ironic'`` (``IRONIC``) with the node's
    UUID as ``hypervisor_hostname`` (and, as Nova's Ironic driver writes it, as
    ``uuid``).
    """
    return {
        "host": host, "hypervisor_hostname": hypervisor_hostname or host,
        "service_id": service_id,
        "uuid": uuid or new_uuid(), "vcpus": 8, "memory_mb": 16384, "local_gb": 200,
        "vcpus_used": 0, "memory_mb_used": 512, "local_gb_used": 0,
        "free_ram_mb": 15872, "free_disk_gb": 200, "disk_available_least": 200,
        "current_workload": 0, "running_vms": 0,
        "hypervisor_type": hypervisor_type, "hypervisor_version": 1000, "cpu_info": "{}",
        "stats": "{}", "mapped": 0, "deleted": 0, "created_at": now,
    }


def ironic_node_row(host: str, service_id: int | None, node: str, *, now: datetime.datetime,
                    uuid: str | None) -> dict[str, Any]:
    """The ``compute_nodes`` row of Ironic node ``node`` reported by ``host``."""
    return compute_node_row(host, service_id, now=now, hypervisor_type=IRONIC,
                            hypervisor_hostname=node, uuid=uuid)


def insert_fake_instances(engine: Engine, count: int, *, host: str | None = None,
                          deleted: int = 0, nodes: list[str] | None = None,
                          progress: Progress = NO_PROGRESS) -> None:
    """Bulk-insert ``count`` fake instance rows, one transaction per batch; the oldest
    ``deleted`` are soft-deleted. Instance ``n`` runs on ``nodes[n]`` if given, else on
    the node named ``host``."""
    on: list[str | None] = list(nodes) if nodes is not None else [host] * count
    progress.start("Adding instances", count)
    try:
        first = 0
        for batch in chunks(on[:count], INSTANCE_BATCH):
            rows = list(_fake_rows(first, host, batch))
            with engine.begin() as conn:
                conn.execute(instances.insert(), rows)  # executemany: the driver batches
                doomed = [row["uuid"] for n, row in enumerate(rows, first) if n < deleted]
                if doomed:
                    _soft_delete(conn, doomed)
            first += len(rows)
            progress.advance(len(rows))
    finally:
        progress.finish()


def _fake_rows(first: int, host: str | None, nodes: Sequence[str | None]
               ) -> Iterator[dict[str, Any]]:
    now = utcnow()
    for n, node in enumerate(nodes, first):
        project = n % PROJECTS
        user = (n // PROJECTS) % USERS_PER_PROJECT
        yield {
            "uuid": str(uuidlib.uuid4()),
            "project_id": _fake_id(f"project-{project}"),
            "user_id": _fake_id(f"user-{project}-{user}"),
            "created_at": now,
            "deleted": 0,
            "hidden": False,
            "vm_state": "active",
            "power_state": 1,
            "host": host,
            "node": node,
            "launched_on": host,
            "display_name": f"fake-{n}",
            "hostname": f"fake-{n}",
            "memory_mb": 512,
            "vcpus": 1,
            "root_gb": 1,
            "ephemeral_gb": 0,
            "launch_index": 0,
            "cleaned": 0,
        }


def _fake_id(seed: str) -> str:
    """A stable 32-hex-digit id, shaped like Keystone's project and user ids."""
    return hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()


def _soft_delete(conn: Connection, uuids: list[str]) -> None:
    """Delete as Nova does: ``deleted = id``, ``deleted_at`` set, the VM gone."""
    now = utcnow()
    conn.execute(
        instances.update()
        .where(instances.c.uuid.in_(uuids))
        .values(deleted=instances.c.id, deleted_at=now, terminated_at=now,
                vm_state="deleted", power_state=0)
    )
