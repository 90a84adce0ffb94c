"""audit: every inconsistency between the API database and the cells, by kind.

The instance checks are in ``cellctl.ops.audit.checks``, the host checks in
``cellctl.ops.audit.hosts``. Here: the options, the cells (each probed first,
so a dead one costs one timeout and is named), the threads, and the result.
The instances of every cell and the instance mappings are merged in one walk,
here; meanwhile the hosts are merged in one walk on a thread of its own.
Without ``fix`` nothing is written, ever.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import IntEnum

from cellctl.cells.probes import DEFAULT_TIMEOUT
from cellctl.cells.reach import Unreachable, open_cells
from cellctl.cells.refs import CellRef, select_cells
from cellctl.clock import utcnow
from cellctl.db import Databases
from cellctl.ops.audit.checks import (
    CELL_LESS_KINDS,
    FIXABLE_KINDS,
    KINDS,
    Audit,
    Findings,
    check_instances,
    check_mappings,
)
from cellctl.ops.audit.hosts import check_hosts
from cellctl.result import Column, Result, Table, plural
from cellctl.results import AuditData, AuditFinding


class AuditExit(IntEnum):
    """``audit``'s exit codes."""

    CLEAN = 0  # nothing found
    FINDINGS = 1  # findings remain (after fix: those it could not or may not repair)
    BAD_INPUT = 1  # (the same code) bad input: nothing read, nothing written
    CELL_UNREACHABLE = 2  # a cell could not be read: the audit is incomplete


BAD_INPUT = AuditExit.BAD_INPUT
DEFAULT_LIMIT = 1000
DEFAULT_BUILD_TIMEOUT = 3600.0

FINDING_COLUMNS = [
    Column("kind", "Kind"),
    Column("cell_name", "Cell Name", none_as="None"),
    Column("cell_uuid", "Cell UUID", none_as="None"),
    Column("subject", "Subject"),
    Column("detail", "Detail"),
    Column("fixable", "Fixable"),
]


def audit(
    dbs: Databases,
    *,
    cell_uuid: str | None = None,
    fix: bool = False,
    kinds: Sequence[str] = (),
    limit: int | None = None,
    build_timeout: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Result[AuditData, AuditFinding]:
    """Find (and with ``fix`` repair) inconsistencies between the API database and cells.

    ``kinds`` limits the checks (default: all); ``cell_uuid`` limits the
    findings to one cell (every cell is still read for the cross-cell
    checks; the kinds without a cell are then not reported). Exit 0 nothing
    found, 1 findings remain (after ``fix``: those it could not or may not
    repair) or bad input, 2 a cell could not be read (the others are audited).
    """
    result: Result[AuditData, AuditFinding] = Result()
    wanted = _kinds(kinds, result)
    cap = _limit(dbs, limit, result)
    patience = _seconds(dbs, build_timeout, result)
    if wanted is None or cap is None or patience is None:
        return result

    with dbs.api.connect() as conn:
        cells = select_cells(conn, result, None, not_found_code=BAD_INPUT)
        only = None
        if cell_uuid is not None:
            chosen = select_cells(conn, result, cell_uuid, not_found_code=BAD_INPUT)
            if chosen is None:
                return result
            only = chosen[0]
    assert cells is not None
    if only is not None:
        wanted = [kind for kind in wanted if kind not in CELL_LESS_KINDS]

    found = Findings(wanted, cap, fix)
    unreachable = Unreachable()  # every cell probed at once; a dead one named, not read
    opened = open_cells(dbs, cells, unreachable, timeout=timeout)
    engines = {cell.id: opened[cell.uuid] for cell in cells if cell.uuid in opened}
    with ThreadPoolExecutor(max_workers=max(1, len(cells)),
                            thread_name_prefix="audit-lookup") as lookups:
        run = Audit(dbs.api, cells, engines, only, found, lookups, utcnow(), patience,
                    unreachable=unreachable)
        _run_checks(run)
    return _result(dbs, result, run, cells)


def _kinds(kinds: Sequence[str], result: Result) -> list[str] | None:
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        result.error(f"Unknown kind {unknown[0]!r} (kinds: {', '.join(KINDS)})", BAD_INPUT)
        return None
    return [kind for kind in KINDS if kind in kinds] if kinds else list(KINDS)


def _limit(dbs: Databases, value: int | None, result: Result) -> int | None:
    # The CLI has parsed and checked it (cellctl.cli.audit); a Python caller may not.
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        result.error(f"{dbs.settings.argument('limit', '--limit')} must be a positive "
                     f"integer, not {value!r}", BAD_INPUT)
        return None
    return value


def _seconds(dbs: Databases, value: float | None, result: Result) -> float | None:
    # The CLI has parsed and checked it (cellctl.cli.audit); a Python caller may not.
    if value is None:
        return DEFAULT_BUILD_TIMEOUT
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or value < 0):
        result.error(f"{dbs.settings.argument('build_timeout', '--build-timeout')} must be a "
                     f"number of seconds (0 or more), not {value!r}", BAD_INPUT)
        return None
    return float(value)


def _run_checks(run: Audit) -> None:
    """The host walk on a thread of its own; meanwhile, here, the merge walk of every
    cell's instances with the instance mappings, and the mappings that have no cell."""
    found = run.found
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-hosts") as walker:
        hosts = walker.submit(check_hosts, run)
        check_instances(run)
        if found.wants(*CELL_LESS_KINDS):
            check_mappings(run)
        hosts.result()


def _result(dbs: Databases, result: Result[AuditData, AuditFinding], run: Audit,
            cells: list[CellRef]) -> Result[AuditData, AuditFinding]:
    found = run.found
    run.unreachable.report(result, cells, left_out="the audit of {cell} is incomplete")
    listing = [finding for kind in found.counts for finding in
               sorted(found.listed[kind], key=lambda f: (f["cell_uuid"] or "", f["subject"]))]
    for kind, count in found.counts.items():
        if count > len(found.listed[kind]):
            listed = len(found.listed[kind])
            first = ("none is listed" if not listed else "only the first is listed"
                     if listed == 1 else f"only the first {listed} are listed")
            result.warn(f"{plural(count, 'finding')} of kind {kind}: {first} "
                        f"(see {dbs.settings.argument('limit', '--limit')})")
    total = sum(found.counts.values())
    if run.fix:
        repaired = sum(found.fixed.values())
        result.info(f"{plural(total, 'finding')}, {repaired} repaired")
    else:
        fixable = sum(1 for f in listing if f["fixable"])
        fix = "--fix" if dbs.settings.from_cli else "fix=True"
        shown = ("" if not fixable else f" ({fixable} fixable with {fix})"
                 if len(listing) == total else
                 f" ({fixable} of the {len(listing)} listed fixable with {fix})")
        result.info(f"{plural(total, 'finding')}{shown}")
    if result.unreachable_cells:
        result.code = AuditExit.CELL_UNREACHABLE
    elif found.remaining() > 0:
        result.code = AuditExit.FINDINGS
    result.table = Table(FINDING_COLUMNS, listing)
    result.data = {
        "findings": listing,
        "counts": dict(found.counts),
        "fixed": {kind: n for kind, n in found.fixed.items() if kind in FIXABLE_KINDS},
        "unreachable_cells": list(result.unreachable_cells),
    }
    return result


