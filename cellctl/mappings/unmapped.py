"""Count a cell's compute hosts and instances that the API database has no mapping for.

Keys are read from the cell in keyset pages and each page is checked with
one ``IN`` query against the API database (cellctl.paging): memory stays at
one page whatever the size of the cell. What counts is what the mapping
commands map (cellctl.cells.queries), so following a hint clears its warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from cellctl.cells.queries import live_nodes, visible_instances
from cellctl.mappings.lookup import fold, mappings_of
from cellctl.paging import keyset_pages
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.tables.api import host_mappings as hm
from cellctl.tables.cell import compute_nodes as cn
from cellctl.tables.cell import instances

if TYPE_CHECKING:
    from sqlalchemy import Column
    from sqlalchemy.engine import Engine, Row

EXAMPLES = 3  # unmapped keys named in a check's details


@dataclass
class Unmapped:
    checked: int = 0
    missing: int = 0
    examples: list[str] = field(default_factory=list)


def unmapped_hosts(cell: Engine, api: Engine) -> Unmapped:
    """Distinct hosts of live compute nodes without a host_mappings row."""
    live_hosts = live_nodes().with_only_columns(cn.c.host).group_by(cn.c.host)
    hosts = ([row.host for row in rows] for rows in keyset_pages(cell, live_hosts, key=cn.c.host))
    return _check(hosts, api, hm.c.host)


def unmapped_instances(cell: Engine, api: Engine, progress: Progress = NO_PROGRESS,
                       label: str = "instances") -> Unmapped:
    """Instances without an instance_mappings row.

    The same instances map_instances maps: soft-deleted ones included (their
    mappings are how the API lists deleted servers and how archiving finds
    them), hidden ones (a resize's or cross-cell move's shadow copy) excluded.
    Following the check's hint therefore always clears the warning.
    """
    with cell.connect() as conn:
        top = conn.execute(select(func.max(instances.c.id))).scalar() or 0
    visible = select(instances.c.id, instances.c.uuid).where(visible_instances())
    # Progress in id space: no COUNT(*) over a large table just to draw a bar.
    progress.start(label, top)
    try:
        return _check_instances(_advancing(keyset_pages(cell, visible), progress), api)
    finally:
        progress.finish()


def _advancing(batches: Iterator[list[Row]], progress: Progress) -> Iterator[list[str]]:
    last_id = 0
    for rows in batches:
        progress.advance(rows[-1].id - last_id)
        last_id = rows[-1].id
        yield [row.uuid for row in rows]


def _check_instances(batches: Iterator[list[str]], api: Engine) -> Unmapped:
    """Look each batch's instances up with the audit's engine (``mappings_of``): the same
    case-blind answer as the audit's."""
    result = Unmapped()
    for batch in batches:
        mapped = mappings_of(api, batch)
        unmapped = [key for key in batch if fold(key) not in mapped]
        result.examples += unmapped[:EXAMPLES - len(result.examples)]
        result.checked += len(batch)
        result.missing += len(unmapped)
    return result


def _check(batches: Iterator[list[str]], api: Engine, column: Column[str]) -> Unmapped:
    """Count each batch's mapped keys in the API database with one IN query.

    Keys are unique in a batch and in the mapping table, so the count is
    exact, and the database compares the keys as its unique key does (MySQL
    ignores case). The keys themselves are fetched only for the first examples.
    """
    result = Unmapped()
    count = select(func.count()).select_from(column.table)
    for batch in batches:
        with api.connect() as conn:
            missing = len(batch) - conn.execute(count.where(column.in_(batch))).scalar_one()
            if missing and len(result.examples) < EXAMPLES:
                mapped = set(conn.execute(select(column).where(column.in_(batch))).scalars())
                unmapped = [key for key in batch if key not in mapped]
                result.examples += unmapped[:EXAMPLES - len(result.examples)]
        result.checked += len(batch)
        result.missing += missing
    return result
