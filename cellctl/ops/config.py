"""The resolved settings as a listing."""

from __future__ import annotations

from cellctl.result import Column, Result, Table
from cellctl.settings import Settings

CONFIG_COLUMNS = [
    Column("setting", "Setting"),
    Column("value", "Value", none_as="(not set)", secret_url=True),
    Column("source", "Source"),
]


def show_config(settings: Settings) -> Result:
    rows = [{"setting": s.name, "value": s.value, "source": s.source} for s in settings.all()]
    rows.append({"setting": "config_files", "value": ", ".join(settings.config_files) or None,
                 "source": "--config-file"})
    return Result(table=Table(CONFIG_COLUMNS, rows))
