"""The service commands: register a service, report that it lives, list them.

``register`` writes to the cell database of ``[database]`` (or
``--database_connection``), as a compute service on that host would;
``heartbeat`` reports through the configured service group driver
(cellctl.liveness); ``list_services`` reads every cell and judges each
service by that driver.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from cellctl.cells.reach import read_cells
from cellctl.cells.refs import CellRef, select_cells
from cellctl.clock import utcnow
from cellctl.db import Databases
from cellctl.errors import CellctlError
from cellctl.ids import NotAUUID, canonical_uuids, new_uuid
from cellctl.interrupts import received
from cellctl.liveness import JUDGE_BATCH, UNKNOWN, Driver, ServiceRecord, judge, service_group
from cellctl.paging import chunks, collector_paused
from cellctl.result import Column, Result, Rows, Table
from cellctl.results import HeartbeatData, RegisterServiceData, ServiceRow
from cellctl.tables.cell import COMPUTE_BINARY, IRONIC, compute_nodes, services
from cellctl.tables.cell import compute_nodes as cn
from cellctl.tables.cell import services as sv
from cellctl.tables.rows import compute_node_row, ironic_node_row, service_row, topic_for
from cellctl.testdata import refusal, rows_refusal
from cellctl.writes.transactions import insert_ignoring_duplicates

if TYPE_CHECKING:
    import datetime

    from sqlalchemy.engine import Connection, Engine

    from cellctl.settings import Settings

# Exit codes of the service commands: 0 ok, BAD_INPUT bad input, a cell not found,
# or no such service.
BAD_INPUT = 1
DEFAULT_INTERVAL = 10.0  # seconds, Nova's report_interval
MAX_NAME = 255  # services.host / binary are VARCHAR(255)
MAX_IRONIC_NODES = 1_000_000  # per register call: test data, not a cloud
_LOOKUP_BATCH = 1000  # values per IN list
_INSERT_BATCH = 5000  # rows per executemany

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


def ironic_node_rows(conn: Connection, host: str, service_id: int | None,
                     node_uuids: list[str], *, now: datetime.datetime) -> list[dict[str, Any]]:
    """``compute_nodes`` rows reporting these Ironic nodes from ``host``.

    A node's row takes the node's UUID as its own ``uuid`` unless another row
    (another host reporting the same node: a duplicate) has it already; then a
    new one, since ``compute_nodes.uuid`` is unique.
    """
    taken: set[str] = set()
    for batch in chunks(node_uuids, _LOOKUP_BATCH):
        taken.update(conn.execute(select(cn.c.uuid).where(cn.c.uuid.in_(batch))).scalars())
    return [ironic_node_row(host, service_id, node, now=now, uuid=None if node in taken else node)
            for node in node_uuids]


def register_service(
    dbs: Databases,
    *,
    host: str,
    binary: str = COMPUTE_BINARY,
    compute_node: bool = True,
    hypervisor_type: str = "fake",
    nodes: int | None = None,
    node_uuids: Sequence[str] = (),
    database_connection: str | None = None,
    force: bool = False,
) -> Result[RegisterServiceData, None]:
    """Add ``host``'s service (and, for nova-compute, its compute node) to the cell.

    With ``hypervisor_type='ironic'`` the service's compute nodes are Ironic
    nodes instead of one named after the host: ``nodes`` makes sure the host
    reports at least that many (new node UUIDs), and each of ``node_uuids`` is
    reported by the host too (the same UUID on two hosts is a duplicated node).

    Idempotent and safe to run concurrently: rows that exist already (by
    Nova's unique keys) are left untouched.
    """
    result: Result[RegisterServiceData, None] = Result()
    arg = dbs.settings.argument
    if not _valid_name(host, arg("host", "--host"), result) or not _valid_name(
            binary, arg("binary", "--binary"), result):
        return result
    if not _valid_name(hypervisor_type, arg("hypervisor_type", "--hypervisor-type"), result):
        return result
    wanted_nodes = _ironic_request(dbs.settings, binary, compute_node, hypervisor_type, nodes,
                                   node_uuids, result)
    if wanted_nodes is None:
        return result
    ironic = hypervisor_type == IRONIC and binary == COMPUTE_BINARY and compute_node
    if _refused(dbs, database_connection, force, result):
        return result
    cell_db = _local_cell(dbs, database_connection)
    if _holds_real_rows(dbs, cell_db, database_connection, force, result):
        return result
    now = utcnow()
    with cell_db.begin() as conn:
        service_created = insert_ignoring_duplicates(
            conn, services, [service_row(host, binary, now=now)]) == 1
        service = _live_service(conn, host, binary)
        if service is None:
            return result.error(
                f"Cannot register {binary} on host {host}: another live service of that host "
                f"already has the topic '{topic_for(binary)}'.", BAD_INPUT)
        node_uuid, node_created = None, False
        added = 0
        if ironic:
            added = _add_ironic_nodes(conn, host, service.id, nodes or 0, wanted_nodes, now=now)
        elif compute_node and binary == COMPUTE_BINARY:
            row = compute_node_row(host, service.id, now=now, hypervisor_type=hypervisor_type)
            node_created = insert_ignoring_duplicates(conn, compute_nodes, [row]) == 1
            node_uuid = conn.execute(
                compute_nodes.select().with_only_columns(compute_nodes.c.uuid).where(
                    compute_nodes.c.host == host, compute_nodes.c.hypervisor_hostname == host,
                    compute_nodes.c.deleted == 0)
            ).scalar()
        reported = _ironic_node_count(conn, host) if ironic else None
    result.info(f"Registered {binary} on host {host} (service {service.uuid})" if service_created
                else f"{binary} on host {host} is already registered (service {service.uuid})")
    if node_uuid is not None:
        result.info(f"Added compute node {host} ({node_uuid}), not mapped to a cell yet"
                    if node_created else f"Compute node {host} ({node_uuid}) is already there")
    if ironic:
        result.info(f"Added {added} ironic nodes to host {host}; it reports {reported}")
    result.data = {
        "host": host, "binary": binary, "service_uuid": service.uuid,
        "service_created": service_created, "compute_node_uuid": node_uuid,
        "compute_node_created": node_created,
    }
    if ironic:
        result.data["ironic_nodes_added"] = added
        result.data["ironic_nodes"] = reported
    return result


def _holds_real_rows(dbs: Databases, cell_db: Engine, database_connection: str | None,
                     force: bool, result: Result) -> bool:
    """Test data never goes unasked into a database with a real deployment's rows."""
    url = database_connection or dbs.settings.database_connection.value or ""
    refused = rows_refusal(cell_db, url, force=force,
                           option=dbs.settings.argument("force", "--force"))
    if refused is not None:
        result.error(refused, BAD_INPUT)
    return refused is not None


def _refused(dbs: Databases, database_connection: str | None, force: bool,
             result: Result) -> bool:
    """Test data never goes unasked into the deployment a default nova.conf names."""
    refused = None if database_connection else refusal(dbs.settings, force=force)
    if refused is not None:
        result.error(refused, BAD_INPUT)
    return refused is not None


def _ironic_request(settings: Settings, binary: str, compute_node: bool, hypervisor_type: str,
                    nodes: int | None, node_uuids: Sequence[str],
                    result: Result) -> list[str] | None:
    """The canonical ``node_uuids``; None (error 1 recorded) if the request is inconsistent."""
    if nodes is None and not node_uuids:
        return []
    if hypervisor_type != IRONIC or binary != COMPUTE_BINARY or not compute_node:
        ironic = ("--hypervisor-type ironic" if settings.from_cli
                  else f"hypervisor_type={IRONIC!r}")
        result.error(f"{settings.argument('nodes', '--nodes')} and "
                     f"{settings.argument('node_uuids', '--node')} add Ironic nodes: they need "
                     f"a nova-compute service with {ironic}", BAD_INPUT)
        return None
    if nodes is not None and not 0 <= nodes <= MAX_IRONIC_NODES:
        result.error(f"{settings.argument('nodes', '--nodes')} must be between 0 and "
                     f"{MAX_IRONIC_NODES}, got {nodes}", BAD_INPUT)
        return None
    try:
        return canonical_uuids(node_uuids)
    except NotAUUID as exc:
        value = exc.value
        result.error(f"{settings.argument('node_uuids', '--node')} must be Ironic node "
                     f"UUIDs, got {value!r}" if not settings.from_cli else
                     f"--node must be an Ironic node UUID, got {value!r}", BAD_INPUT)
        return None


def _add_ironic_nodes(conn: Connection, host: str, service_id: int, at_least: int,
                      node_uuids: list[str], *, now: datetime.datetime) -> int:
    """Bulk-insert ``host``'s Ironic node rows; how many were new."""
    missing = max(0, at_least - _ironic_node_count(conn, host))
    planned = node_uuids + [new_uuid() for _ in range(missing)]
    added = 0
    for batch in chunks(planned, _INSERT_BATCH):
        rows = ironic_node_rows(conn, host, service_id, list(batch), now=now)
        added += insert_ignoring_duplicates(conn, compute_nodes, rows)
    return added


def _ironic_node_count(conn: Connection, host: str) -> int:
    return int(conn.execute(select(func.count()).select_from(cn).where(
        cn.c.host == host, cn.c.hypervisor_type == IRONIC, cn.c.deleted == 0)).scalar() or 0)


def heartbeat(
    dbs: Databases,
    *,
    host: str,
    binary: str = COMPUTE_BINARY,
    interval: float = DEFAULT_INTERVAL,
    count: int | None = None,
    wait: Callable[[float], bool] | None = None,
    database_connection: str | None = None,
    force: bool = False,
) -> Result[HeartbeatData, None]:
    """Report "I'm OK" for ``host``'s service every ``interval`` seconds, ``count`` times
    or until ``wait`` (sleeps up to the given seconds) returns True: asked to stop.

    Each beat goes through the configured service group driver, as a Nova
    service's would (the db driver: one UPDATE of ``report_count + 1``,
    ``last_seen_up`` and ``updated_at``). A beat that fails after the first
    one is counted as missed and the next is tried, as a Nova service does.
    """
    result: Result[HeartbeatData, None] = Result()
    # The CLI has parsed and checked both (cellctl.cli.arguments); a Python caller may not.
    if not interval > 0:
        result.error(f"interval must be a positive number of seconds, got {interval!r}", BAD_INPUT)
    if count is not None and count < 1:
        result.error(f"count must be a positive number, got {count!r}", BAD_INPUT)
    if result.code:
        return result
    arg = dbs.settings.argument
    if not _valid_name(host, arg("host", "--host"), result) or not _valid_name(
            binary, arg("binary", "--binary"), result):
        return result
    wait = wait or _sleep
    if _refused(dbs, database_connection, force, result):
        return result
    cell_db = _local_cell(dbs, database_connection)
    if _holds_real_rows(dbs, cell_db, database_connection, force, result):
        return result
    service = ServiceRecord(host=host, binary=binary, topic=topic_for(binary), disabled=False,
                            forced_down=False, last_seen_up=None, created_at=None)
    driver = service_group(dbs.settings)
    if driver.name != "db":
        # mc and zk never read the database (nor does Nova's): the row is looked up once,
        # for its topic (the memcache key, the znode group)
        with cell_db.connect() as conn:
            row = _live_service(conn, host, binary)
        if row is None:
            driver.close()
            return _no_service(dbs.settings, result, host, binary, beats=0)
        service = service._replace(topic=row.topic)
    try:
        return _beat_until_stopped(dbs.settings, driver, cell_db, service, interval, count,
                                   wait, result)
    finally:
        driver.close()


def _beat_until_stopped(settings: Settings, driver: Driver, cell_db: Engine,
                        service: ServiceRecord, seconds: float,
                        beats_wanted: int | None, wait: Callable[[float], bool],
                        result: Result[HeartbeatData, None]
                        ) -> Result[HeartbeatData, None]:
    host, binary = service.host, service.binary
    beats = missed = 0
    last_error = ""
    last_seen_up = None
    while True:
        try:
            last_seen_up = driver.report(cell_db, service)
        except CellctlError as exc:
            if (beats == 0 and missed == 0) or received() is not None:
                raise  # the first beat's error is the answer; an interrupt is never a miss
            missed, last_error = missed + 1, str(exc)
        except LookupError:
            return _no_service(settings, result, host, binary, beats=beats)
        else:
            beats += 1
        if (beats_wanted is not None and beats + missed >= beats_wanted) or wait(seconds):
            break
    if missed:
        result.warn(f"{missed} of {beats + missed} reports could not be written: {last_error}")
    result.data = {"host": host, "binary": binary, "reports": beats, "missed": missed,
                   "last_seen_up": last_seen_up, "driver": driver.name}
    return result


def _no_service(settings: Settings, result: Result, host: str, binary: str, *,
                beats: int) -> Result:
    register = (f"cellctl service register --host {host}" if settings.from_cli
                else f"register_service(dbs, host={host!r})")
    return result.error(
        f"No live {binary} service on host {host} in the cell database"
        + (" any more" if beats else "")
        + f"; register it first with: {register}", BAD_INPUT)


def list_services(dbs: Databases, *, cell_uuid: str | None = None) -> Result[None, ServiceRow]:
    """Every live service of every cell (or one), Up/Down as the service group decides."""
    with collector_paused():
        return _list_services(dbs, cell_uuid)


def _list_services(dbs: Databases, cell_uuid: str | None) -> Result[None, ServiceRow]:
    result: Result[None, ServiceRow] = Result()
    with dbs.api.connect() as conn:
        cells = select_cells(conn, result, cell_uuid, not_found_code=BAD_INPUT)
    if cells is None:
        return result
    now = utcnow()
    driver = service_group(dbs.settings)
    try:
        found = read_cells(dbs, cells,
                           lambda cell, engine: _judged_services(cell, engine, driver, now),
                           result, left_out="services of {cell} are not listed")
    finally:
        driver.close()
    listing: list[tuple[Any, ...]] = []
    warnings: set[str] = set()
    for cell in cells:
        if cell.uuid in found:
            rows, cell_warnings = found.pop(cell.uuid)
            warnings.update(cell_warnings)
            listing += rows
    for warning in sorted(warnings):
        result.warn(warning)
    result.table = Table(SERVICE_COLUMNS, Rows([c.key for c in SERVICE_COLUMNS], listing))
    return result


def _judged_services(cell: CellRef, engine: Engine, driver: Driver, now: datetime.datetime
                     ) -> tuple[list[tuple[Any, ...]], list[str]]:
    """The cell's live services as listing rows (SERVICE_COLUMNS' order) sorted by host
    and binary, and the driver's warnings: read in one streamed query and judged
    JUDGE_BATCH at a time."""
    listing: list[tuple[Any, ...]] = []
    warnings: list[str] = []
    shared: dict[Any, Any] = {}  # one string object per binary, per disabled reason
    query = select(*ServiceRecord.columns(sv), sv.c.disabled_reason).where(sv.c.deleted == 0)
    make, width = ServiceRecord._make, len(ServiceRecord._fields)
    with engine.connect() as conn:
        rows = conn.execution_options(yield_per=JUDGE_BATCH).execute(query)
        for part in rows.partitions():
            records = [make(row[:width]) for row in part]
            alive, warning = judge(driver, records, now)
            if warning and warning not in warnings:
                warnings.append(warning)
            for row, record, up in zip(part, records, alive, strict=True):
                binary, reason = record.binary, row[width]
                listing.append((
                    cell.name, cell.uuid, shared.setdefault(binary, binary), record.host,
                    "disabled" if record.disabled else "enabled",
                    UNKNOWN if up is None else "up" if up else "down", bool(record.forced_down),
                    record.last_seen_up, shared.setdefault(reason, reason)))
    listing.sort(key=lambda row: (row[3] or "", row[2] or ""))
    return listing, warnings


def _local_cell(dbs: Databases, database_connection: str | None) -> Engine:
    if database_connection:
        argument = dbs.settings.argument("database_connection", "--database_connection")
        return dbs.cell(database_connection, f"cell database ({argument})")
    return dbs.local_cell


def _live_service(conn: Connection, host: str, binary: str) -> Any:
    return conn.execute(select(sv.c.id, sv.c.uuid, sv.c.topic).where(
        sv.c.host == host, sv.c.binary == binary, sv.c.deleted == 0)).first()


def _valid_name(value: str, argument: str, result: Result) -> bool:
    if not value.strip() or len(value) > MAX_NAME:
        result.error(f"{argument} must be between 1 and {MAX_NAME} characters, got {value!r}",
                     BAD_INPUT)
        return False
    return True


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return False
