"""The service commands: register a service, report that it lives, list them.

``register`` writes to the cell database of ``[database]`` (or
``--database_connection``), as a compute service on that host would;
``heartbeat`` reports through the configured service group driver
(cellctl.liveness); ``list_services`` reads every cell and judges each
service by that driver.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cellctl.clock import utcnow
from cellctl.db import Databases
from cellctl.ids import new_uuid
from cellctl.liveness import UNKNOWN, Driver, ServiceRecord, judge, service_group
from cellctl.ops.across_cells import read_cells
from cellctl.ops.cell_refs import select_cells
from cellctl.result import Column, Result, Table
from cellctl.tables.cell import COMPUTE_BINARY
from cellctl.transactions import insert_ignoring_duplicates

if TYPE_CHECKING:
    import datetime

    from sqlalchemy.engine import Connection, Engine

# nova.objects.service.SERVICE_VERSION of Nova 34.0.0, which its services write.
SERVICE_VERSION = 74
DEFAULT_INTERVAL = 10.0  # seconds, Nova's report_interval
MAX_NAME = 255  # services.host / binary are VARCHAR(255)

SERVICE_COLUMNS = [
    Column("cell_name", "Cell Name", none_as="None"),
    Column("cell_uuid", "Cell UUID"),
    Column("binary", "Binary"),
    Column("host", "Host"),
    Column("status", "Status"),
    Column("state", "State"),
    Column("forced_down", "Forced Down"),
    Column("last_seen_up", "Last Seen Up", none_as="-"),
    Column("disabled_reason", "Disabled Reason", none_as="-"),
]


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


def compute_node_row(host: str, service_id: int | None, *,
                     now: datetime.datetime) -> dict[str, Any]:
    """A ``compute_nodes`` row for ``host``'s (fake) hypervisor, not yet mapped."""
    return {
        "host": host, "hypervisor_hostname": host, "service_id": service_id,
        "uuid": new_uuid(), "vcpus": 8, "memory_mb": 16384, "local_gb": 200,
        "vcpus_used": 0, "memory_mb_used": 512, "local_gb_used": 0,
        "free_ram_mb": 15872, "free_disk_gb": 200, "disk_available_least": 200,
        "current_workload": 0, "running_vms": 0,
        "hypervisor_type": "fake", "hypervisor_version": 1000, "cpu_info": "{}",
        "stats": "{}", "mapped": 0, "deleted": 0, "created_at": now,
    }


def register_service(
    dbs: Databases,
    host: str,
    *,
    binary: str = COMPUTE_BINARY,
    compute_node: bool = True,
    database_connection: str | None = None,
) -> Result:
    """Add ``host``'s service (and, for nova-compute, its compute node) to the cell.

    Idempotent and safe to run concurrently: rows that exist already (by
    Nova's unique keys) are left untouched.
    """
    from cellctl.tables.cell import compute_nodes, services

    result = Result()
    if not _valid_name(host, "--host", result) or not _valid_name(binary, "--binary", result):
        return result
    cell_db = _local_cell(dbs, database_connection)
    now = utcnow()
    with cell_db.begin() as conn:
        service_created = insert_ignoring_duplicates(
            conn, services, [service_row(host, binary, now=now)]) == 1
        service = _live_service(conn, host, binary)
        if service is None:
            return result.error(
                f"Cannot register {binary} on host {host}: another live service of that host "
                f"already has the topic '{topic_for(binary)}'.", 1)
        node_uuid, node_created = None, False
        if compute_node and binary == COMPUTE_BINARY:
            node_created = insert_ignoring_duplicates(
                conn, compute_nodes, [compute_node_row(host, service.id, now=now)]) == 1
            node_uuid = conn.execute(
                compute_nodes.select().with_only_columns(compute_nodes.c.uuid).where(
                    compute_nodes.c.host == host, compute_nodes.c.hypervisor_hostname == host,
                    compute_nodes.c.deleted == 0)
            ).scalar()
    result.info(f"Registered {binary} on host {host} (service {service.uuid})" if service_created
                else f"{binary} on host {host} is already registered (service {service.uuid})")
    if node_uuid is not None:
        result.info(f"Added compute node {host} ({node_uuid}), not mapped to a cell yet"
                    if node_created else f"Compute node {host} ({node_uuid}) is already there")
    result.data = {
        "host": host, "binary": binary, "service_uuid": service.uuid,
        "service_created": service_created, "compute_node_uuid": node_uuid,
        "compute_node_created": node_created,
    }
    return result


def heartbeat(
    dbs: Databases,
    host: str,
    *,
    binary: str = COMPUTE_BINARY,
    interval: str | float = DEFAULT_INTERVAL,
    count: str | int | None = None,
    wait: Callable[[float], bool] | None = None,
    database_connection: str | None = None,
) -> Result:
    """Report "I'm OK" for ``host``'s service every ``interval`` seconds, ``count`` times
    or until ``wait`` (sleeps up to the given seconds) returns True: asked to stop.

    Each beat goes through the configured service group driver, as a Nova
    service's would (the db driver: one UPDATE of ``report_count + 1``,
    ``last_seen_up`` and ``updated_at``). A beat that fails after the first
    one is counted as missed and the next is tried, as a Nova service does.
    """
    result = Result()
    seconds = _positive(interval, "--interval", float, result)
    beats_wanted = None if count is None else _positive(count, "--count", int, result)
    if seconds is None or (count is not None and beats_wanted is None):
        return result
    if not _valid_name(host, "--host", result) or not _valid_name(binary, "--binary", result):
        return result
    wait = wait or _sleep
    cell_db = _local_cell(dbs, database_connection)
    service = ServiceRecord(host=host, binary=binary, topic=topic_for(binary), disabled=False,
                            forced_down=False, last_seen_up=None, created_at=None)
    driver = service_group(dbs.settings)
    try:
        return _beat_until_stopped(driver, cell_db, service, seconds, beats_wanted, wait, result)
    finally:
        driver.close()


def _beat_until_stopped(driver: Driver, cell_db: Engine, service: ServiceRecord, seconds: float,
                        beats_wanted: int | None, wait: Callable[[float], bool],
                        result: Result) -> Result:
    from cellctl.errors import CellctlError

    host, binary = service.host, service.binary
    beats = missed = 0
    last_error = ""
    last_seen_up = None
    while True:
        try:
            last_seen_up = driver.report(cell_db, service)
        except CellctlError as exc:
            if beats == 0 and missed == 0:
                raise
            missed, last_error = missed + 1, str(exc)
        except LookupError:
            return result.error(
                f"No live {binary} service on host {host} in the cell database"
                + (" any more" if beats else "")
                + f"; register it first with: cellctl service register --host {host}", 1)
        else:
            beats += 1
        if (beats_wanted is not None and beats + missed >= beats_wanted) or wait(seconds):
            break
    if missed:
        result.warn(f"{missed} of {beats + missed} reports could not be written: {last_error}")
    result.data = {"host": host, "binary": binary, "reports": beats, "missed": missed,
                   "last_seen_up": last_seen_up}
    return result


def list_services(dbs: Databases, cell_uuid: str | None = None) -> Result:
    """Every live service of every cell (or one), Up/Down as the service group decides."""
    result = Result()
    with dbs.api.connect() as conn:
        cells = select_cells(conn, result, cell_uuid, not_found_code=1)
    if cells is None:
        return result
    now = utcnow()
    driver = service_group(dbs.settings)
    try:
        found = read_cells(dbs, cells, lambda cell, engine: _judged_services(engine, driver, now),
                           result, left_out="services of {cell} are not listed")
    finally:
        driver.close()
    listing: list[dict[str, Any]] = []
    warnings: set[str] = set()
    for cell in cells:
        if cell.uuid not in found:
            continue
        rows, alive, warning = found[cell.uuid]
        if warning:
            warnings.add(warning)
        for row, up in sorted(zip(rows, alive, strict=True),
                              key=lambda pair: (pair[0].host or "", pair[0].binary or "")):
            listing.append({
                "cell_name": cell.name, "cell_uuid": cell.uuid, "binary": row.binary,
                "host": row.host, "status": "disabled" if row.disabled else "enabled",
                "state": UNKNOWN if up is None else "up" if up else "down",
                "forced_down": bool(row.forced_down),
                "last_seen_up": row.last_seen_up, "disabled_reason": row.disabled_reason,
            })
    for warning in sorted(warnings):
        result.warn(warning)
    result.table = Table(SERVICE_COLUMNS, listing)
    return result


def _judged_services(engine: Engine, driver: Driver, now: datetime.datetime
                     ) -> tuple[list[Any], list[bool | None], str | None]:
    from sqlalchemy import select

    from cellctl.tables.cell import services as sv

    with engine.connect() as conn:
        rows = list(conn.execute(select(sv).where(sv.c.deleted == 0)))
    alive, warning = judge(driver, [ServiceRecord.of(row) for row in rows], now)
    return rows, alive, warning


def _local_cell(dbs: Databases, database_connection: str | None) -> Engine:
    if database_connection:
        return dbs.cell(database_connection, "cell database (--database_connection)")
    return dbs.local_cell


def _live_service(conn: Connection, host: str, binary: str) -> Any:
    from sqlalchemy import select

    from cellctl.tables.cell import services as sv

    return conn.execute(select(sv.c.id, sv.c.uuid).where(
        sv.c.host == host, sv.c.binary == binary, sv.c.deleted == 0)).first()


def _valid_name(value: str, flag: str, result: Result) -> bool:
    if not value.strip() or len(value) > MAX_NAME:
        result.error(f"{flag} must be between 1 and {MAX_NAME} characters, got {value!r}", 1)
        return False
    return True


def _positive(value: str | float | int, flag: str, kind: type, result: Result) -> Any:
    try:
        number = kind(value)
        if number > 0:
            return number
    except (TypeError, ValueError):
        pass
    result.error(f"{flag} must be a positive number, got {value!r}", 1)
    return None


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False
