"""Where test data may go: ``dev add-instances``, ``service register`` and ``service
heartbeat`` write fake rows (or make a dead service look alive).

They refuse, in one line, a cell database named by a configuration file that
oslo.config's default search found (``~/.nova/nova.conf``, ``/etc/nova/nova.conf``...):
that is the deployment this host belongs to, whose rows are real, and nobody
named it for this command. ``--demo`` (cellctl's own databases) or naming the
database (``--config-file``, ``--database_connection``, ``CELLCTL_*``) is the
way to test data; ``--force`` writes anyway.
"""

from __future__ import annotations

from typing import Any

from cellctl.settings import Setting, Settings
from cellctl.urls import mask


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
