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
    rows += _service_group_rows(settings, {str(row["setting"]) for row in rows})
    return Result(table=Table(CONFIG_COLUMNS, rows))


def _service_group_rows(settings: Settings, listed: set[str]) -> list[dict[str, str | None]]:
    """The service group driver, its options and the backend it talks to (masked)."""
    from cellctl.liveness import options, service_group

    rows: list[dict[str, str | None]] = [
        {"setting": o.name, "value": o.value, "source": o.source}
        for o in options.shown(settings) if o.name not in listed]
    driver = service_group(settings)
    try:
        rows.append({"setting": "servicegroup_backend", "value": driver.describe(),
                     "source": f"servicegroup_driver {driver.name}"})
    finally:
        driver.close()
    return rows
