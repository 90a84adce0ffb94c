"""``config``: the configuration read, in order, and every resolved setting with its source."""

from __future__ import annotations

from typing import Any

from cellctl.db import Databases
from cellctl.result import Column, Result, Table
from cellctl.results import ConfigRow
from cellctl.settings import NOVA_PROG, Settings

CONFIG_COLUMNS = [
    Column("setting", "Setting"),
    Column("value", "Value", none_as="(not set)", secret_url=True),
    Column("source", "Source"),
]


def show_config(dbs: Databases) -> Result[None, ConfigRow]:
    """One row per file or directory read (``config_file``/``config_dir``, in the order
    read: later files win), then one per setting, its value and where it came from.
    Opens no database: ``dbs`` is only asked for its settings."""
    settings = dbs.settings
    rows: list[ConfigRow] = [
        {"setting": f"config_{read.kind}", "value": read.path, "source": read.origin}
        for read in settings.read
    ]
    if not rows:
        rows.append({"setting": "config_file", "value": None,
                     "source": f"none given or found ({NOVA_PROG}'s default search): "
                               "embedded defaults apply"})
    rows += [{"setting": s.name, "value": _text(s.value), "source": s.source}
             for s in settings.all()]
    rows.append(_service_group_backend(settings))
    return Result(table=Table(CONFIG_COLUMNS, rows))


def _service_group_backend(settings: Settings) -> ConfigRow:
    """What the configured service group driver talks to (masked), e.g. its memcached
    servers; a driver is built but never connects."""
    from cellctl.liveness import service_group

    driver = service_group(settings)
    try:
        return {"setting": "servicegroup_backend", "value": driver.describe(),
                "source": f"servicegroup_driver {driver.name}"}
    finally:
        driver.close()


def _text(value: Any) -> str | None:
    """Values as a configuration file would spell them."""
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)
