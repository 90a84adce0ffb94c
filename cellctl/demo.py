"""``cellctl --demo`` (or ``CELLCTL_DEMO=1``): cellctl's own databases and nothing else.

The embedded defaults apply only when no configuration is found, so on a host
with a nova.conf in oslo.config's default search (``~/.nova/nova.conf``,
``/etc/nova/nova.conf``...) the README's demo would write into that
deployment. The demo switch resolves with no configuration files or
directories and no ``CELLCTL_*``/``OS_*`` values except ``CELLCTL_STATE_DIR``:
SQLite files in the state directory and the in-memory queue, whatever the host has.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cellctl.errors import ConfigError

if TYPE_CHECKING:
    from cellctl.settings import ConfigPath, Settings

DEMO_ENV = "CELLCTL_DEMO"
KEPT = ("CELLCTL_STATE_DIR",)


def demo_settings(config_paths: Sequence[ConfigPath] = (),
                  api_database_connection: str | None = None) -> Settings:
    """The embedded defaults only; a configuration named with them is a contradiction."""
    from cellctl.settings import resolve

    if config_paths or api_database_connection:
        named = "--config-file/--config-dir" if config_paths else "--api-database-connection"
        raise ConfigError(f"--demo uses only cellctl's own databases: drop {named} "
                          f"(or --demo and {DEMO_ENV})")
    environ = {name: os.environ[name] for name in KEPT if name in os.environ}
    return resolve(default_config_files=[], default_config_dirs=[], environ=environ,
                   from_cli=True)
