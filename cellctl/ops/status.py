"""``status``: the upgrade checks of cells v2, and with ``check_connectivity`` a real
connection to every cell's database and queue.

Each check is a row (Success, Warning or Failure, and details ending with the
command that fixes it); the exit code is the worst result: 0, 1 or 2. Every
cell's database is probed first, in parallel and bounded by the timeout, so a
dead cell costs the timeout once and is reported as a failure while the
checks go on over the cells that answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Literal

from sqlalchemy import case, false, func, select

from cellctl import migrate
from cellctl.cells.probes import DEFAULT_TIMEOUT
from cellctl.cells.reach import (
    MAX_PARALLEL_CELLS,
    CellProbe,
    failed_databases,
    probe_cells,
    read_cells,
)
from cellctl.cells.refs import CellRef, select_cells
from cellctl.clock import utcnow
from cellctl.db import Databases
from cellctl.errors import SchemaMissing
from cellctl.liveness import ServiceRecord, judge, service_group
from cellctl.mappings.unmapped import Unmapped, unmapped_hosts, unmapped_instances
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Column, Result, Table, plural
from cellctl.results import ConnectivityProbe, StatusCheck, StatusData
from cellctl.tables.cell import services as sv

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

Outcome = Literal["success", "warning", "failure"]


class StatusExit(IntEnum):
    """``status``' exit codes: the worst check's outcome (nova-status upgrade check's)."""

    SUCCESS = 0
    WARNING = 1
    FAILURE = 2


_CODES: dict[Outcome, int] = {"success": StatusExit.SUCCESS, "warning": StatusExit.WARNING,
                              "failure": StatusExit.FAILURE}

# nova.objects.service.SERVICE_VERSION_ALIASES['Gazpacho']: the oldest nova-compute
# Nova 34 supports (nova-status "Older than N-1 computes").
OLDEST_SUPPORTED_COMPUTE_VERSION = 72
MAX_NAMED = 10  # hosts or cells named in one check's details

STATUS_COLUMNS = [Column("check", "Check"), Column("result", "Result"),
                  Column("details", "Details")]


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    details: str

    def as_dict(self) -> StatusCheck:
        return {"check": self.name, "result": self.outcome, "details": self.details}


@dataclass(frozen=True)
class ComputeVersions:
    """nova-compute services as Nova's minimum-version query counts them: not deleted,
    forced_down false, whatever their liveness."""

    minimum: int | None  # None: no such service in the cell
    too_old: list[tuple[str, int]]  # (host, version) below the oldest supported, first few
    too_old_count: int


@dataclass
class CellScan:
    """What could be read from one reachable cell's database."""

    cell: CellRef
    schema: migrate.SchemaState
    hosts: Unmapped | None = None  # None for cell0, which has no hosts
    instances: Unmapped | None = None
    unreadable: str | None = None  # why hosts and instances could not be read
    conductors: list[ServiceRecord] = field(default_factory=list)
    compute_versions: ComputeVersions | None = None  # None for cell0

    @property
    def schema_problem(self) -> str | None:
        if self.unreadable:
            return self.unreadable
        if not self.schema.is_current:
            return f"{self.cell.label}: {_schema_problem(self.schema)}"
        return None


def status(dbs: Databases, *, check_connectivity: bool = False,
           timeout: float = DEFAULT_TIMEOUT, progress: Progress = NO_PROGRESS
           ) -> Result[StatusData, StatusCheck]:
    result: Result[StatusData, StatusCheck] = Result()
    try:
        api_schema = migrate.schema_state(dbs.api, "api")
    except SchemaMissing as exc:  # e.g. a SQLite file not created yet
        return _finish(result, [Check("API database schema", "failure",
                                      f"{exc}. Run command 'cellctl api_db sync' and then retry.")],
                       [])
    if api_schema.owner == "none":
        return _finish(result, [_api_schema_check(api_schema)], [])
    with dbs.api.connect() as conn:
        cells = select_cells(conn, result, None, not_found_code=StatusExit.FAILURE) or []
    probes = probe_cells(dbs, cells, timeout, queues=check_connectivity)
    dead = failed_databases(probes)
    for cell in cells:
        if cell.uuid in dead:
            result.unreachable(cell.uuid, dead[cell.uuid])
    scans = _scan(dbs, result, [c for c in cells if c.uuid not in result.unreachable_cells],
                  timeout, progress)
    checks = [
        _cell0_check(cells),
        _cells_check(cells),
        _reachable_check(cells, result.unreachable_cells),
        _api_schema_check(api_schema),
        _cell_schemas_check(scans, skipped=len(result.unreachable_cells)),
        _hosts_check(scans),
        _instances_check(scans),
        _conductors_check(dbs, scans, timeout, skipped=len(result.unreachable_cells),
                          result=result),
        _compute_versions_check(scans, skipped=len(result.unreachable_cells)),
    ]
    if check_connectivity:
        checks += _connectivity_checks(probes)
    return _finish(result, checks, probes if check_connectivity else [])


def _scan(dbs: Databases, result: Result, cells: list[CellRef], timeout: float,
          progress: Progress) -> list[CellScan]:
    # A cell that answered the probe but fails since (its server stopped) is unreachable.
    found = read_cells(dbs, cells, lambda cell, engine: _read_cell(dbs, engine, cell, progress),
                       result, left_out=None, timeout=timeout, probe=False,
                       workers=1 if progress is not NO_PROGRESS else MAX_PARALLEL_CELLS)
    return list(found.values())


def _read_cell(dbs: Databases, engine: Engine, cell: CellRef,
               progress: Progress) -> CellScan:
    scan = CellScan(cell, migrate.schema_state(engine, "cell"))
    if scan.schema.owner == "none":
        return scan
    try:
        if not cell.is_cell0:
            scan.hosts = unmapped_hosts(engine, dbs.api)
            scan.conductors, scan.compute_versions = _read_services(engine)
        scan.instances = unmapped_instances(engine, dbs.api, progress,
                                            f"Instances of {cell.label}")
    except SchemaMissing as exc:
        if exc.url == dbs.api_url:
            raise
        scan.unreadable = str(exc)  # a table is missing: a schema problem, not a dead cell
    return scan


def _read_services(engine: Engine) -> tuple[list[ServiceRecord], ComputeVersions]:
    """The cell's live nova-conductor rows, and its nova-compute versions (one aggregate
    and one short query, whatever the number of computes)."""
    counted = (sv.c.binary == "nova-compute", sv.c.deleted == 0, sv.c.forced_down == false())
    old = sv.c.version < OLDEST_SUPPORTED_COMPUTE_VERSION
    with engine.connect() as conn:
        rows = conn.execute(select(*ServiceRecord.columns(sv))
                            .where(sv.c.binary == "nova-conductor", sv.c.deleted == 0)).all()
        minimum, too_old_count = conn.execute(
            select(func.min(sv.c.version), func.count(case((old, 1)))).where(*counted)).one()
        too_old = conn.execute(select(sv.c.host, sv.c.version).where(*counted, old)
                               .order_by(sv.c.version, sv.c.host).limit(MAX_NAMED)).all()
    return ([ServiceRecord.of(r) for r in rows],
            ComputeVersions(None if minimum is None else int(minimum),
                            [(r.host, int(r.version or 0)) for r in too_old],
                            int(too_old_count or 0)))


def _finish(result: Result[StatusData, StatusCheck], checks: list[Check],
            probes: list[CellProbe]) -> Result[StatusData, StatusCheck]:
    result.code = max(_CODES[c.outcome] for c in checks)
    result.table = Table(STATUS_COLUMNS, [
        {**c.as_dict(), "result": c.outcome.capitalize()} for c in checks
    ])
    result.data = {"checks": [c.as_dict() for c in checks],
                   "unreachable_cells": result.unreachable_cells}
    if probes:
        result.data["connectivity"] = [_probe_dict(p) for p in probes]
    return result


# --- the checks -------------------------------------------------------------


def _cell0_check(cells: list[CellRef]) -> Check:
    if any(c.is_cell0 for c in cells):
        return Check("Cell0 mapping", "success", "cell0 is mapped")
    return Check("Cell0 mapping", "failure",
                 "No cell0 mapping found. Run command 'cellctl map_cell0' (or "
                 "'cellctl simple_cell_setup') and then retry.")


def _cells_check(cells: list[CellRef]) -> Check:
    regular = [c for c in cells if not c.is_cell0]
    if not regular:
        return Check("Cell mappings", "failure",
                     "There needs to be at least one cell besides cell0. Run command "
                     "'cellctl create_cell' (or 'cellctl simple_cell_setup') and then retry.")
    disabled = sum(c.disabled for c in regular)
    note = f" ({disabled} disabled)" if disabled else ""
    return Check("Cell mappings", "success", f"{plural(len(regular), 'cell')} besides cell0{note}")


def _reachable_check(cells: list[CellRef], unreachable: list[str]) -> Check:
    if not cells:
        return Check("Cell databases", "success", "no cell is mapped")
    if not unreachable:
        return Check("Cell databases", "success",
                     _all(len(cells), "cell database", "answered", "answered"))
    names = ", ".join(c.label for c in cells if c.uuid in unreachable)
    return Check("Cell databases", "failure",
                 f"{len(unreachable)} of {plural(len(cells), 'cell database')} unreachable: "
                 f"{names}. Check the cell's database_connection ('cellctl list_cells') and its "
                 "server, then retry.")


def _api_schema_check(state: migrate.SchemaState) -> Check:
    if state.is_current:
        return Check("API database schema", "success", f"at head ({state.revision})")
    return Check("API database schema", "failure",
                 f"API database: {_schema_problem(state)}. "
                 f"{_sync_hint(state, 'api_db sync', 'api_db sync')}")


def _cell_schemas_check(scans: list[CellScan], skipped: int) -> Check:
    behind = [s for s in scans if s.schema_problem]
    not_checked = f" ({skipped} unreachable, not checked)" if skipped else ""
    if not scans:
        return Check("Cell database schemas", "success", f"no cell database read{not_checked}")
    if not behind:
        return Check("Cell database schemas", "success",
                     f"{plural(len(scans), 'cell database')} at head{not_checked}")
    problems = "; ".join(s.schema_problem or "" for s in behind)
    return Check("Cell database schemas", "failure",
                 f"{problems}. {_sync_hint(behind[0].schema, 'db sync --all-cells', 'db sync')}")


def _schema_problem(state: migrate.SchemaState) -> str:
    if state.owner == "none":
        return "no schema"
    head = migrate.NOVA_HEADS[state.kind] if state.owner == "nova" else state.head
    owner = "Nova's schema" if state.owner == "nova" else "schema"
    return f"{owner} at {state.revision or 'no revision'}, head is {head}"


def _sync_hint(state: migrate.SchemaState, cellctl: str, nova_manage: str) -> str:
    """The command that upgrades the schema: Nova's own tool for a database Nova owns."""
    if state.owner == "nova":
        return f"Run command 'nova-manage {nova_manage}' and then retry."
    return f"Run command 'cellctl {cellctl}' and then retry."


def _hosts_check(scans: list[CellScan]) -> Check:
    return _mapping_check(
        "Host mappings", [(s.cell, s.hosts) for s in scans if s.hosts is not None],
        "compute host", "host mapping",
        fix="Run command 'cellctl discover_hosts' and then retry.",
        when_none="No host mappings or compute nodes were found. Remember to run command "
                  "'cellctl discover_hosts' when new compute hosts are deployed.")


def _instances_check(scans: list[CellScan]) -> Check:
    return _mapping_check(
        "Instance mappings", [(s.cell, s.instances) for s in scans if s.instances is not None],
        "instance", "instance mapping",
        fix="Run command 'cellctl map_instances --cell_uuid {cell_uuid}' and then retry.",
        when_none="no instances found")


def _conductors_check(dbs: Databases, scans: list[CellScan], timeout: float, *,
                      skipped: int, result: Result) -> Check:
    """Every regular cell has a live nova-conductor, judged by the configured driver:
    without one, its computes cannot report or take work."""
    name = "Cell conductors"
    regular = [s for s in scans if s.compute_versions is not None]
    not_checked = f" ({skipped} unreachable, not checked)" if skipped else ""
    if not regular:
        return Check(name, "success", f"no regular cell database read{not_checked}")
    driver = service_group(dbs.settings, timeout=timeout)
    try:
        records = [r for s in regular for r in s.conductors]
        alive, warning = judge(driver, records, utcnow())  # one call for all cells
        verdicts = iter(alive)
        without: list[str] = []
        unknown: list[str] = []
        for scan in regular:
            seen = [next(verdicts) for _ in scan.conductors]
            if True in seen:
                continue
            (unknown if None in seen else without).append(scan.cell.label)
        if warning:
            result.warn(warning)
        backend = driver.describe()
    finally:
        driver.close()
    if not without and not unknown:
        return Check(name, "success", f"every cell has a live nova-conductor "
                     f"({plural(len(regular), 'cell')}, {driver.name} driver){not_checked}")
    parts = []
    if without:
        parts.append(f"no live nova-conductor in {_names(without)}: its compute services "
                     "cannot report or take work. Start nova-conductor for "
                     f"{'that cell' if len(without) == 1 else 'those cells'}")
    if unknown:
        parts.append(f"liveness of the nova-conductor of {_names(unknown)} is unknown: "
                     f"{backend} could not be read")
    return Check(name, "warning", "; ".join(parts) + not_checked)


def _compute_versions_check(scans: list[CellScan], *, skipped: int) -> Check:
    """nova-status's "Older than N-1 computes": the oldest nova-compute in any cell (not
    deleted, not forced down, whatever its liveness) is one Nova 34 supports."""
    name = "Compute service versions"
    # Nova's get_minimum_version_all_cells considers only cells whose minimum is not 0
    # (None or 0: no computes there yet), and an overall 0 means a fresh install.
    counted = [(s.cell, s.compute_versions) for s in scans
               if s.compute_versions is not None and s.compute_versions.minimum]
    not_checked = f" ({skipped} unreachable, not checked)" if skipped else ""
    versions = [v.minimum for _, v in counted if v.minimum]
    if not versions:
        return Check(name, "success", f"no nova-compute services to check{not_checked}")
    oldest = min(versions)
    if oldest >= OLDEST_SUPPORTED_COMPUTE_VERSION:
        return Check(name, "success", f"oldest nova-compute service version {oldest} "
                     f"(at least {OLDEST_SUPPORTED_COMPUTE_VERSION}){not_checked}")
    old = [(cell, v) for cell, v in counted if v.too_old_count]
    total = sum(v.too_old_count for _, v in old)
    named = [f"{host} (version {version}, {cell.label})"
             for cell, v in old for host, version in v.too_old][:MAX_NAMED]
    more = f" and {total - len(named)} more" if total > len(named) else ""
    return Check(name, "failure",
                 f"{plural(total, 'nova-compute service')} older than version "
                 f"{OLDEST_SUPPORTED_COMPUTE_VERSION}, the oldest Nova 34 supports: "
                 f"{', '.join(named)}{more}. Upgrade {'it' if total == 1 else 'them'} "
                 "(or delete the services of hosts that are gone) and then retry."
                 + not_checked)


def _names(labels: list[str]) -> str:
    shown = ", ".join(labels[:MAX_NAMED])
    return shown + (f" and {len(labels) - MAX_NAMED} more" if len(labels) > MAX_NAMED else "")


def _mapping_check(name: str, counted: list[tuple[CellRef, Unmapped]], thing: str,
                   mapping: str, *, fix: str, when_none: str) -> Check:
    missing = [(cell, u) for cell, u in counted if u.missing]
    if missing:
        if "{cell_uuid}" in fix:  # the real command for each cell, not a placeholder
            fix = " ".join(fix.format(cell_uuid=cell.uuid) for cell, _ in missing)
        return Check(name, "warning", f"{_missing_text(missing, thing, mapping)}. {fix}")
    total = sum(u.checked for _, u in counted)
    if not total:
        return Check(name, "success", when_none)
    return Check(name, "success", _all(total, thing, "is mapped", "are mapped"))


def _missing_text(missing: list[tuple[CellRef, Unmapped]], thing: str, mapping: str) -> str:
    total = sum(u.missing for _, u in missing)
    per_cell = "; ".join(f"{u.missing} in {cell.label}, e.g. {', '.join(u.examples)}"
                         for cell, u in missing)
    verb = "has" if total == 1 else "have"
    return f"{plural(total, thing)} {verb} no {mapping} ({per_cell})"


def _connectivity_checks(probes: list[CellProbe]) -> list[Check]:
    """One row per cell and target; a queue's hosts (oslo multi-host URLs) share a row."""
    groups: dict[tuple[str, str], list[CellProbe]] = {}
    for probe in probes:
        groups.setdefault((probe.cell.uuid, probe.target), []).append(probe)
    return [_connectivity_check(group) for group in groups.values()]


def _connectivity_check(group: list[CellProbe]) -> Check:
    first = group[0]
    name = f"{first.target.capitalize()} of {first.cell.label}"
    if first.probe is None:
        return Check(name, "success", f"not checked: cell0 has no message queue ({first.url})")
    answered = [p.probe for p in group if p.probe is not None and p.probe.ok]
    errors = [p.probe.error or "unreachable" for p in group if p.probe is not None
              and not p.probe.ok]
    if not errors:
        slowest = max(p.latency_ms or 0.0 for p in answered)
        if len(group) == 1:
            return Check(name, "success", f"reachable in {slowest:g} ms ({first.url})")
        return Check(name, "success", f"all {len(group)} hosts reachable, slowest {slowest:g} ms")
    if not answered:
        return Check(name, "failure", "; ".join(errors))
    # kombu fails over between a queue's hosts: the cell still works, with less redundancy.
    return Check(name, "warning",
                 f"{len(errors)} of {len(group)} hosts unreachable: {'; '.join(errors)}")


def _probe_dict(probe: CellProbe) -> ConnectivityProbe:
    outcome = probe.probe
    return {
        "cell_uuid": probe.cell.uuid,
        "cell_name": probe.cell.name,
        "target": probe.target,
        "url": probe.url,
        "result": "skipped" if outcome is None else "success" if outcome.ok else "failure",
        "latency_ms": outcome.latency_ms if outcome else None,
        "error": outcome.error if outcome else None,
    }




def _all(n: int, noun: str, verb_one: str, verb_many: str) -> str:
    """"all 3 instances are mapped", but "the one instance is mapped" (never "all 1 ... are")."""
    return f"the one {noun} {verb_one}" if n == 1 else f"all {plural(n, noun)} {verb_many}"
