"""What counts as live, visible or a compute service in a cell database.

Every command that reads a cell's hosts or instances builds on these, so they
agree: ``status``'s hints clear their own warnings only because it counts the
instances ``map_instances`` maps, and the hosts ``discover_hosts`` maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import false, or_, select

from cellctl.tables.cell import COMPUTE_BINARY
from cellctl.tables.cell import compute_nodes as cn
from cellctl.tables.cell import instances as i
from cellctl.tables.cell import services as sv

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Select


def live_nodes() -> Select[Any]:
    """Live compute nodes that name a host, as (id, host, uuid)."""
    return select(cn.c.id, cn.c.host, cn.c.uuid).where(cn.c.deleted == 0, cn.c.host.is_not(None))


def unmapped_nodes() -> Select[Any]:
    """Live compute nodes not yet marked mapped; NULL counts as unmapped (Nova skips those)."""
    return live_nodes().where(or_(cn.c.mapped < 1, cn.c.mapped.is_(None)))


def compute_services() -> Select[Any]:
    """Live nova-compute services (disabled ones too), as (id, host)."""
    return select(sv.c.id, sv.c.host).where(
        sv.c.binary == COMPUTE_BINARY, sv.c.deleted == 0, sv.c.host.is_not(None)
    )


def visible_instances() -> ColumnElement[bool]:
    """The instances that have (or should have) an instance mapping.

    Soft-deleted ones included (their mappings are how the API lists deleted
    servers and how archiving finds them); hidden ones (a resize's or
    cross-cell move's shadow copy) excluded.
    """
    return or_(i.c.hidden.is_(None), i.c.hidden == false())


def hosts_with_instances(hosts: Sequence[str]) -> Select[Any]:
    """Those of ``hosts`` that have a live (not deleted) instance, one row each.

    What keeps ``delete_host`` (and ``audit --fix``) from removing a host's
    mapping: soft-deleted VMs and hidden rows count, as Nova counts them.
    """
    return (select(i.c.host).where(i.c.host.in_(list(hosts)), i.c.deleted == 0)
            .group_by(i.c.host))
