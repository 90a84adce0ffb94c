"""Where test data may go: ``dev add-instances``, ``service register`` and ``service
heartbeat`` write fake rows (or make a dead service look alive).

They refuse, in one line, a cell database named by a configuration file that
oslo.config's default search found (``~/.nova/nova.conf``, ``/etc/nova/nova.conf``...):
that is the deployment this host belongs to, whose rows are real, and nobody
named it for this command. ``--demo`` (cellctl's own databases) or naming the
database (``--config-file``, ``--database_connection``, ``CELLCTL_*``) is the
way to test data; ``--force`` writes anyway.

However the database was named, they also refuse one that already holds a real
deployment's rows: a live ``compute_nodes`` row whose ``cpu_info`` is not
``'{}'``. Every Nova virt driver reports its hypervisor's CPU description there
(libvirt's JSON, Ironic's empty string); cellctl's test-data writers
(cellctl.tables.rows) write ``'{}'``. Only ``--force`` writes there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cellctl.settings import Setting, Settings
from cellctl.urls import mask

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

FAKE_CPU_INFO = "{}"  # what cellctl.tables.rows writes; no Nova virt driver does


def default_search_file(settings: Settings, setting: Setting[Any]) -> str | None:
    """The file found by the default search that ``setting`` comes from, if it does."""
    for entry in settings.read:
        if (entry.kind == "file" and not entry.origin.startswith("--config")
                and setting.source.startswith(f"{entry.path} [")):
            return entry.path
    return None


def refusal(settings: Settings, *, force: bool, option: str = "--force") -> str | None:
    """Why test data must not go to ``[database]``, or None."""
    setting = settings.database_connection
    found = default_search_file(settings, setting)
    if force or found is None:
        return None
    return (f"Refusing to write test data into {mask(setting.value)}: {found} names it, "
            "found by nova-manage's default search, so it may hold a real deployment's rows "
            f"(use cellctl --demo for cellctl's own databases, or {option})")


def real_compute_nodes(engine: Engine) -> int:
    """Live compute nodes a Nova compute service reported (not cellctl's test data)."""
    from sqlalchemy import func, or_, select

    from cellctl.tables.cell import compute_nodes as cn

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(cn).where(
            cn.c.deleted == 0,
            or_(cn.c.cpu_info.is_(None), cn.c.cpu_info != FAKE_CPU_INFO))).scalar() or 0)


def rows_refusal(engine: Engine, url: str, *, force: bool,
                 option: str = "--force") -> str | None:
    """Why test data must not go into ``url``'s database because of what it holds, or None.
    A database that cannot be read is left to the command to report."""
    from cellctl.errors import CellctlError

    if force:
        return None
    try:
        real = real_compute_nodes(engine)
    except CellctlError:
        return None
    if not real:
        return None
    nodes = "compute node" + ("" if real == 1 else "s")
    return (f"Refusing to write test data into {mask(url)}: it holds {real} {nodes} reported "
            f"by Nova compute services, a real deployment's rows ({option} writes anyway)")
