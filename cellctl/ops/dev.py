"""Developer helpers: fake instances in a cell database, for demos, tests and benchmarks.

There is no Nova here to boot instances, so ``dev add-instances`` writes rows
that look like Nova's (a UUID, a project and user, a host, soft delete) into
the ``[database]`` cell. It refuses a database whose schema Nova manages: fake
rows must never reach a real cloud.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import exists, select

from cellctl import migrate
from cellctl.db import Databases
from cellctl.ids import canonical_uuid
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Result, plural
from cellctl.results import AddInstancesData
from cellctl.tables.cell import IRONIC
from cellctl.tables.cell import compute_nodes as cn
from cellctl.tables.cell import instances as inst
from cellctl.tables.rows import insert_fake_instances
from cellctl.testdata import refusal, rows_refusal
from cellctl.urls import mask

# Exit codes of dev add-instances: 0 added, BAD_INPUT bad input or a database refused.
BAD_INPUT = 1

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

def add_instances(dbs: Databases, *, count: int, host: str | None = None, deleted: int = 0,
                  node: str | None = None, ironic: bool = False,
                  progress: Progress = NO_PROGRESS, force: bool = False
                  ) -> Result[AddInstancesData, None]:
    """Add ``count`` fake instances to ``[database]``; the oldest ``deleted`` are soft-deleted.

    Their ``node`` is ``host`` (a libvirt-like compute), or ``node`` (an
    Ironic node UUID) for all of them, or with ``ironic`` one each on that
    many Ironic nodes ``host`` reports that have no live instance yet, as
    Nova's Ironic driver places them.
    """
    result: Result[AddInstancesData, None] = Result()
    # Arguments as the caller passes them: "--count" on the command line, "count=" in Python.
    arg = {name: dbs.settings.argument(name, f"--{name}")
           for name in ("count", "deleted", "node", "ironic", "host")}
    if count < 1:
        return result.error(f"{arg['count']} must be a positive number of instances", BAD_INPUT)
    if not 0 <= deleted <= count:
        return result.error(f"{arg['deleted']} must be between 0 and {arg['count']}", BAD_INPUT)
    if (node is not None or ironic) and not host:
        return result.error(f"{arg['node']} and {arg['ironic']} need {arg['host']}: the service "
                            "the instances are on", BAD_INPUT)
    if node is not None and ironic:
        return result.error(f"{arg['node']} and {arg['ironic']} cannot be combined", BAD_INPUT)
    if node is not None and canonical_uuid(node) is None:
        return result.error(f"{arg['node']} must be an Ironic node UUID, got {node!r}",
                            BAD_INPUT)
    refused = refusal(dbs.settings, force=force)
    if refused is not None:
        return result.error(refused, BAD_INPUT)
    engine = dbs.local_cell
    where = mask(dbs.settings.database_connection.value)
    owner = migrate.schema_state(engine, "cell").owner
    if owner == "nova":
        return result.error(
            f"Refusing to add fake instances to {where}: its schema is managed by Nova, "
            "so it may be a real cloud's database", BAD_INPUT,
        )
    if owner == "none":
        return result.error(f"The cell database {where} has no schema: run 'cellctl db sync'",
                            BAD_INPUT)

    refused = rows_refusal(engine, dbs.settings.database_connection.value or "", force=force,
                           option=dbs.settings.argument("force", "--force"))
    if refused is not None:
        return result.error(refused, BAD_INPUT)
    nodes: list[str] | None = None
    if node is not None:
        nodes = [canonical_uuid(node) or node] * count
    elif ironic:
        assert host is not None
        nodes = free_ironic_nodes(engine, host, count)
        if len(nodes) < count:
            free = plural(len(nodes), "Ironic node")
            return result.error(f"Host {host} reports {free} without an instance, fewer than "
                                f"{arg['count']} {count}", BAD_INPUT)
    insert_fake_instances(engine, count, host=host, deleted=deleted, nodes=nodes,
                          progress=progress)
    result.info(f"Added {plural(count, 'instance')} ({deleted} deleted) to the cell database "
                f"{where}")
    result.data = {"added": count, "deleted": deleted, "database": where}
    return result


def free_ironic_nodes(engine: Engine, host: str, count: int) -> list[str]:
    """Up to ``count`` Ironic nodes ``host`` reports that have no live instance (one query)."""
    busy = exists().where(inst.c.node == cn.c.hypervisor_hostname, inst.c.deleted == 0)
    query = (select(cn.c.hypervisor_hostname).distinct()
             .where(cn.c.host == host, cn.c.hypervisor_type == IRONIC, cn.c.deleted == 0,
                    ~busy)
             .order_by(cn.c.hypervisor_hostname).limit(count))
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())
