"""What still uses a host or a cell: the reasons behind a refused delete, and what to do.

``delete_host`` and ``delete_cell`` refuse with a number; these read what
stands in the way (instances live or deleted but not archived, services and
compute nodes left in the cell database, host and instance mappings) and say
what to run first. Read-only: ``--dry-run`` and the JSON of a refusal use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.engine import Connection

    from cellctl.results import CellContentsData

# Instance UUIDs named per host or cell; the counts are always complete.
SAMPLE = 20


@dataclass
class CellContents:
    """Rows of one cell database that match a filter (a host, or the whole cell)."""

    live_instances: int = 0
    live_instance_uuids: list[str] = field(default_factory=list)  # at most SAMPLE
    deleted_instances: int = 0  # soft-deleted, not archived yet
    services: list[dict[str, Any]] = field(default_factory=list)  # live: id, host, binary
    compute_nodes: list[dict[str, Any]] = field(default_factory=list)  # live: id, host, uuid

    def as_dict(self) -> CellContentsData:
        return cast("CellContentsData", asdict(self))


def cell_contents(conn: Connection, hosts: Sequence[str] | None = None) -> CellContents:
    """What the cell database holds on ``hosts`` (None: everywhere in the cell)."""
    from sqlalchemy import case, func, select, true

    from cellctl.tables.cell import compute_nodes as cn
    from cellctl.tables.cell import instances as i
    from cellctl.tables.cell import services as sv

    def on(column: Any) -> ColumnElement[bool]:
        return true() if hosts is None else column.in_(list(hosts))

    found = CellContents()
    live, deleted = conn.execute(select(
        func.sum(case((i.c.deleted == 0, 1), else_=0)),
        func.sum(case((i.c.deleted != 0, 1), else_=0)),
    ).where(on(i.c.host))).one()
    found.live_instances, found.deleted_instances = int(live or 0), int(deleted or 0)
    found.live_instance_uuids = [str(u) for u in conn.execute(
        select(i.c.uuid).where(on(i.c.host), i.c.deleted == 0).order_by(i.c.id).limit(SAMPLE)
    ).scalars()]
    found.services = [
        {"id": r.id, "host": r.host, "binary": r.binary, "disabled": bool(r.disabled)}
        for r in conn.execute(select(sv.c.id, sv.c.host, sv.c.binary, sv.c.disabled)
                              .where(on(sv.c.host), sv.c.deleted == 0).order_by(sv.c.id))
    ]
    found.compute_nodes = [
        {"id": r.id, "host": r.host, "hypervisor_hostname": r.hypervisor_hostname,
         "uuid": r.uuid}
        for r in conn.execute(select(cn.c.id, cn.c.host, cn.c.hypervisor_hostname, cn.c.uuid)
                              .where(on(cn.c.host), cn.c.deleted == 0).order_by(cn.c.id))
    ]
    return found


def host_advice(host: str, cell: str, contents: CellContents) -> list[str]:
    """What to run, in order, before ``host``'s mapping can go (and stay gone)."""
    steps = []
    if contents.live_instances:
        steps.append(f"Move or delete the {contents.live_instances} live instance(s) on "
                     f"{host}: openstack server list --all-projects --host {host}, then "
                     "openstack server migrate (or delete) each one.")
    computes = [s for s in contents.services if s["binary"] == "nova-compute"]
    if computes:
        ids = ", ".join(str(s["id"]) for s in computes)
        steps.append(f"Stop nova-compute on {host} and delete its service (id {ids}): "
                     "openstack compute service delete <id>; otherwise discover_hosts maps "
                     "the host again.")
    if contents.deleted_instances:
        steps.append(f"{contents.deleted_instances} deleted instance(s) of {host} are not "
                     "archived: nova-manage db archive_deleted_rows --until-complete "
                     "removes them (not required to delete the host mapping).")
    return steps or [f"Nothing on {host} in {cell} stands in the way."]


def cell_advice(cell: str, contents: CellContents, hosts: Sequence[str],
                instance_mappings: int) -> list[str]:
    """What to run, in order, before ``cell`` can be deleted."""
    steps = []
    if contents.live_instances:
        steps.append(f"Move or delete the {contents.live_instances} live instance(s) in "
                     f"{cell}: delete_cell refuses while any remains, even with --force.")
    if contents.deleted_instances or (instance_mappings and not contents.live_instances):
        steps.append("Archive the deleted instances and their mappings: nova-manage db "
                     "archive_deleted_rows --until-complete (or delete_cell --force, which "
                     "deletes those instance mappings).")
    if hosts:
        steps.append(f"Delete the {len(hosts)} host mapping(s) (delete_host for each host), "
                     "or use delete_cell --force, which deletes them and marks the "
                     "compute nodes unmapped.")
    if contents.services:
        steps.append(f"{len(contents.services)} service(s) remain in the cell database: "
                     "stop them and delete them (openstack compute service delete <id>) "
                     "before retiring the cell.")
    return steps or [f"Nothing in {cell} stands in the way."]


def describe(where: str, contents: CellContents) -> list[str]:
    """Lines for people: what ``contents`` holds (instances, services, compute nodes)."""
    lines = [f"Instances {where}: {contents.live_instances} live, "
             f"{contents.deleted_instances} deleted but not archived."]
    if contents.live_instance_uuids:
        more = contents.live_instances - len(contents.live_instance_uuids)
        lines.append("  live: " + ", ".join(contents.live_instance_uuids)
                     + (f" and {more} more" if more > 0 else ""))
    lines.append(f"Services that would remain {where}: "
                 + (", ".join(f"{s['binary']} on {s['host']} (id {s['id']})"
                              for s in contents.services) or "none"))
    lines.append(f"Compute nodes that would remain {where}: "
                 + (", ".join(f"{n['hypervisor_hostname']} on {n['host']} ({n['uuid']})"
                              for n in contents.compute_nodes) or "none"))
    return lines


def numbered(steps: Sequence[str]) -> list[str]:
    return ["What to run first:"] + [f"  {n}. {step}" for n, step in enumerate(steps, 1)]
