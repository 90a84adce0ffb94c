"""``cell check``: are the cells' stored URLs still right, and do the cells answer?

Per cell, one row per check (Success, Warning, Failure; exit 0, 1, 2 like
``status``):

- *URLs against this host's configuration*, where that is knowable: the
  local cell (the one whose database is where ``[database] connection``
  points) must store URLs that expand to exactly ``[database] connection``
  and ``[DEFAULT] transport_url`` (a VIP, port or password changed since the
  cell was created leaves a stale URL; which part differs is said, never a
  password); no cell may use the ``[api_database]`` database. Other cells'
  URLs are not known to this host and are only expanded.
- *Reachability*: a real connection to every database and queue host, in
  parallel and bounded by the timeout (cellctl.cells.reach).
- *cell0*: mapped, transport ``none:///``, its database not named
  ``..._cell0_cell0`` (map_cell0 run on a cell0 URL) and no other cell's.
- *Sharing*: two cells on one database or queue (compared where they point,
  after template expansion: cellctl.cells.sharing); two cells with one name.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

from cellctl.cells.probes import DEFAULT_TIMEOUT
from cellctl.cells.reach import CellProbe, probe_cells
from cellctl.cells.refs import CELL0_TRANSPORT_URL, CellRef, select_cells
from cellctl.cells.sharing import database_place, shared_places
from cellctl.db import Databases
from cellctl.errors import InvalidURL
from cellctl.result import Column, Result, Table
from cellctl.results import CellCheck, CellCheckData
from cellctl.urls import mask, split_url

Outcome = Literal["success", "warning", "failure"]


class CellCheckExit(IntEnum):
    """``cell check``'s exit codes: the worst outcome of any check."""

    OK = 0  # every check succeeded
    WARNING = 1  # a check warns
    FAILURE = 2  # a check failed


_CODES: dict[Outcome, CellCheckExit] = {"success": CellCheckExit.OK,
                                        "warning": CellCheckExit.WARNING,
                                        "failure": CellCheckExit.FAILURE}

CHECK_COLUMNS = [Column("cell", "Cell", none_as="-"), Column("check", "Check"),
                 Column("result", "Result"), Column("details", "Details")]


@dataclass(frozen=True)
class Check:
    cell: CellRef | None  # None: about the whole deployment
    name: str
    outcome: Outcome
    details: str

    def as_dict(self) -> CellCheck:
        return {"cell": self.cell.label if self.cell else None,
                "cell_uuid": self.cell.uuid if self.cell else None,
                "check": self.name, "result": self.outcome, "details": self.details}


def check_cells(dbs: Databases, *, timeout: float = DEFAULT_TIMEOUT,
                connectivity: bool = True) -> Result[CellCheckData, CellCheck]:
    """Every check over every cell; exit 0 all well, 1 a warning, 2 a failure."""
    result: Result[CellCheckData, CellCheck] = Result()
    with dbs.api.connect() as conn:
        cells = select_cells(conn, result, None, not_found_code=CellCheckExit.FAILURE) or []
    checks: list[Check] = []
    checks += _cell0_checks(dbs, cells)
    checks += _config_checks(dbs, cells)
    checks += _sharing_checks(dbs, cells)
    if connectivity:
        checks += _reach_checks(probe_cells(dbs, cells, timeout, queues=True))
    result.code = max((_CODES[c.outcome] for c in checks), default=CellCheckExit.OK)
    result.table = Table(CHECK_COLUMNS, [
        {**c.as_dict(), "result": c.outcome.capitalize()} for c in checks])
    result.data = {"checks": [c.as_dict() for c in checks]}
    return result


def _cell0_checks(dbs: Databases, cells: list[CellRef]) -> list[Check]:
    cell0 = next((c for c in cells if c.is_cell0), None)
    if cell0 is None:
        return [Check(None, "cell0", "failure",
                      "cell0 is not mapped: run cellctl cell ensure --name cell0 --from-config "
                      "(or map_cell0)")]
    checks = []
    transport = (cell0.transport_url or "").rstrip("/")
    if transport != CELL0_TRANSPORT_URL.rstrip("/"):
        checks.append(Check(cell0, "cell0 transport", "failure",
                            f"cell0's transport URL is {mask(cell0.transport_url)!s}, not "
                            f"{CELL0_TRANSPORT_URL}: cellctl cell ensure --name cell0"))
    else:
        checks.append(Check(cell0, "cell0 transport", "success", CELL0_TRANSPORT_URL))
    database = dbs.expand_database_url(cell0.database_connection) or ""
    place = database_place(database)
    if place is not None and place[-1].split("/")[-1].split(".")[0].endswith("_cell0_cell0"):
        checks.append(Check(cell0, "cell0 database", "warning",
                            f"{mask(database)} is named _cell0 twice: map_cell0 was given a "
                            "cell0 URL as [database]"))
    return checks


def _config_checks(dbs: Databases, cells: list[CellRef]) -> list[Check]:
    configured_db = dbs.settings.database_connection.value
    configured_mq = dbs.settings.transport_url.value
    api_place = database_place(dbs.settings.api_database_connection.value)
    local_place = database_place(configured_db)
    checks = []
    for cell in cells:
        expanded_db = dbs.expand_database_url(cell.database_connection)
        where = database_place(expanded_db)
        if "{" in (cell.database_connection or "") and expanded_db == cell.database_connection:
            checks.append(Check(cell, "URLs", "warning",
                                "the database URL is a template this host cannot expand "
                                "([database] connection not set or not parsable)"))
        if where is not None and where == api_place:
            checks.append(Check(cell, "URLs", "failure",
                                f"the cell's database is the API database ([api_database] "
                                f"connection): {mask(expanded_db)}"))
            continue
        if cell.is_cell0 or where is None or where != local_place:
            continue
        differences = []
        for what, stored, configured, option in (
                ("database", expanded_db, configured_db, "[database] connection"),
                ("transport", dbs.expand_transport_url(cell.transport_url), configured_mq,
                 "[DEFAULT] transport_url")):
            if configured and stored != configured:
                differences.append(f"stored {what} URL {mask(stored)} differs from {option} "
                                   f"{mask(configured)} ({_differing_parts(stored, configured)})")
        if differences:
            checks.append(Check(cell, "URLs", "warning",
                                "; ".join(differences) + ": the URLs stored for the cell are "
                                f"stale, or this host's configuration is ({_update_hint(cell)} "
                                "updates the cell)"))
        else:
            checks.append(Check(cell, "URLs", "success",
                                "the local cell: stored URLs expand to this host's "
                                "[database] connection and [DEFAULT] transport_url"))
    return checks


def _update_hint(cell: CellRef) -> str:
    """The command that writes this host's URLs into ``cell``, with its real name or UUID
    (an unnamed cell has no name for ``cell ensure``: nova-manage's ``update_cell``
    without URL flags does the same by UUID)."""
    if cell.name:
        return f"cellctl cell ensure --name {shlex.quote(cell.name)} --from-config"
    return f"cellctl update_cell --cell_uuid {cell.uuid}"


def _differing_parts(stored: str | None, configured: str) -> str:
    """Which parts of two URLs differ, named without their values where secret."""
    try:
        a, b = split_url(stored or ""), split_url(configured)
    except InvalidURL:
        return "not comparable"
    parts = []
    if a.scheme != b.scheme:
        parts.append("scheme")
    if [h.user for h in a.hosts] != [h.user for h in b.hosts]:
        parts.append("user")
    if [h.password for h in a.hosts] != [h.password for h in b.hosts]:
        parts.append("password")
    if [h.hostname.lower() for h in a.hosts] != [h.hostname.lower() for h in b.hosts]:
        parts.append("host")
    if [h.port for h in a.hosts] != [h.port for h in b.hosts]:
        parts.append("port")
    if a.path != b.path:
        parts.append("path")
    if a.query != b.query:
        parts.append("query")
    return ", ".join(parts) or "spelling"


def _sharing_checks(dbs: Databases, cells: list[CellRef]) -> list[Check]:
    checks = []
    for shared in shared_places(dbs, cells):
        names = ", ".join(c.label for c in shared.cells)
        checks.append(Check(None, f"shared {shared.kind}", "failure",
                            f"{names} use one {shared.kind} ({shared.url}): messages or rows "
                            "of one cell reach the other"))
    by_name: dict[str, list[CellRef]] = {}
    for cell in cells:
        if cell.name:
            by_name.setdefault(cell.name, []).append(cell)
    for name, same in sorted(by_name.items()):
        if len(same) > 1:
            checks.append(Check(None, "names", "warning",
                                f"{len(same)} cells are named '{name}' "
                                f"({', '.join(c.uuid for c in same)}): --cell {name} is "
                                "ambiguous (exit 9)"))
    if not checks:
        checks.append(Check(None, "sharing", "success",
                            "no two cells share a database, a queue or a name"))
    return checks


def _reach_checks(probes: list[CellProbe]) -> list[Check]:
    groups: dict[tuple[str, str], list[CellProbe]] = {}
    for probe in probes:
        groups.setdefault((probe.cell.uuid, probe.target), []).append(probe)
    checks = []
    for group in groups.values():
        first = group[0]
        name = f"{first.target} reachable"
        if first.probe is None:
            checks.append(Check(first.cell, name, "success", "cell0 has no queue"))
            continue
        errors = [p.probe.error or "unreachable" for p in group
                  if p.probe is not None and not p.probe.ok]
        if not errors:
            checks.append(Check(first.cell, name, "success", ", ".join(
                str(p.url) for p in group)))
        elif len(errors) < len(group):
            checks.append(Check(first.cell, name, "warning",
                                f"{len(errors)} of {len(group)} hosts unreachable: "
                                + "; ".join(errors)))
        else:
            checks.append(Check(first.cell, name, "failure", "; ".join(errors)))
    return checks
