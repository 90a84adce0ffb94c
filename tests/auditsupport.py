"""Builders for the audit tests: a two-cell cloud with every kind of finding, and the
fingerprint of every table (to prove an audit without --fix wrote nothing)."""

from __future__ import annotations

import datetime
import hashlib
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cellrows import cell_id
from hostsupport import add_hosts, add_node, map_host, setup_cells
from instance_helpers import MARKER, add_instances, put_marker

from cellctl.clock import utcnow
from cellctl.tables.api import instance_mappings
from cellctl.tables.cell import instances


def insert_mappings(api_url: str, cell_uuid: str | None, uuids: list[str], *,
                    created_at: datetime.datetime | None = None) -> None:
    """Instance mappings as Nova's API writes them (cell None: still building)."""
    cid = cell_id(api_url, cell_uuid) if cell_uuid is not None else None
    rows = [{"instance_uuid": u, "cell_id": cid, "project_id": "project-0",
             "user_id": "user-0", "queued_for_delete": False,
             "created_at": created_at or utcnow()} for u in uuids]
    _run(api_url, lambda conn: conn.execute(instance_mappings.insert(), rows))


def _run(url: str, work: Any) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            work(conn)
    finally:
        engine.dispose()


@dataclass
class Scene:
    """A cloud with two cells and, for every kind, what is a finding and what is not."""

    cells: list[str]  # cell1 ([database]), cell2
    urls: list[str]
    # kind -> {(cell, subject)}
    expected: dict[str, set[tuple[str | None, str]]] = field(default_factory=dict)
    fixable: dict[str, set[str]] = field(default_factory=dict)  # kind -> subjects
    refs: dict[str, Any] = field(default_factory=dict)  # named rows for the assertions


def every_kind(cloud: Any) -> Scene:
    """Build one cloud holding every kind of finding, each next to rows that look alike
    but are fine (the audit must not report those)."""
    cells = setup_cells(cloud, extra_cells=1)
    cell1, cell2 = cells
    url1, url2 = cloud.cell_urls
    api = cloud.api_url
    scene = Scene(cells, [url1, url2])
    refs = scene.refs

    # Fine: mapped where they live; a deleted one still mapped (until archived); a
    # hidden copy in cell2 of an instance living in cell1 (a cross-cell move).
    fine = add_instances(url1, 3)
    (deleted,) = add_instances(url1, 1, vm_state="deleted", deleted=True)
    insert_mappings(api, cell1, [*fine, deleted])
    add_instances(url2, 1, uuid=fine[0], hidden=True)
    # instance_without_mapping: a live and a soft-deleted one; a hidden one is not.
    unmapped = add_instances(url1, 1)
    (unmapped_deleted,) = add_instances(url2, 1, vm_state="deleted", deleted=True)
    add_instances(url1, 1, hidden=True)
    (no_project,) = add_instances(url2, 1, project_id=None)
    refs.update(unmapped=unmapped[0], unmapped_deleted=unmapped_deleted, no_project=no_project)
    # mapping_without_instance: archived from cell1 (no row anywhere).
    archived = str(uuidlib.uuid4())
    insert_mappings(api, cell1, [archived])
    refs["archived"] = archived
    # mapping_in_wrong_cell: mapped to cell1, lives in cell2 (a move that failed half-way).
    (moved,) = add_instances(url2, 1)
    insert_mappings(api, cell1, [moved])
    refs["moved"] = moved
    # mapping_without_cell: two hours old; one a minute old is a build in progress.
    stuck, building = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    insert_mappings(api, None, [stuck], created_at=utcnow() - datetime.timedelta(hours=2))
    insert_mappings(api, None, [building], created_at=utcnow() - datetime.timedelta(minutes=1))
    refs.update(stuck=stuck, building=building)
    # leftover_marker
    put_marker(cloud, unmapped[0])
    # Hosts. Fine: 'up' (node, service, mapped), 'svc-only' (service only, mapped),
    # 'new' (node mapped = 0, not yet discovered).
    add_hosts(url1, ["up"])
    map_host(cloud, "up", cell1)
    add_hosts(url1, ["svc-only"], with_nodes=False)
    map_host(cloud, "svc-only", cell1)
    add_hosts(url1, ["new"])
    # host_mapping_without_host: 'ghost' (fixable), 'ghost-busy' (a live instance on it).
    map_host(cloud, "ghost", cell1)
    map_host(cloud, "ghost-busy", cell2)
    add_instances(url2, 1, host="ghost-busy")
    # Its instance needs a mapping, or it is a finding of its own.
    _map_unmapped(cloud, url2, cell2, exclude={unmapped_deleted, no_project, moved})
    # A deleted host whose mapping went with it, and a deleted node: fine.
    add_node(url1, "gone", mapped=1)
    _run(url1, lambda conn: conn.execute(sa.text(
        "UPDATE compute_nodes SET deleted = id WHERE host = 'gone'")))
    # node_mapped_without_host_mapping: 'lost' (its service was deleted and re-created).
    add_hosts(url2, ["lost"])
    _run(url2, lambda conn: conn.execute(sa.text(
        "UPDATE compute_nodes SET mapped = 1 WHERE host = 'lost'")))
    # host_in_several_cells: 'twin' has a node in cell1 and a service in cell2.
    add_hosts(url1, ["twin"])
    map_host(cloud, "twin", cell1)
    add_hosts(url2, ["twin"], with_nodes=False)

    scene.expected = {
        "instance_without_mapping": {(cell1, unmapped[0]), (cell2, unmapped_deleted),
                                     (cell2, no_project)},
        "mapping_without_instance": {(cell1, archived)},
        "mapping_in_wrong_cell": {(cell1, moved)},
        "mapping_without_cell": {(None, stuck)},
        "host_mapping_without_host": {(cell1, "ghost"), (cell2, "ghost-busy")},
        "node_mapped_without_host_mapping": {(cell2, "lost")},
        "host_in_several_cells": {(cell1, "twin")},
        "leftover_marker": {(None, unmapped[0])},
    }
    scene.fixable = {
        "instance_without_mapping": {unmapped[0], unmapped_deleted},
        "mapping_without_instance": {archived},
        "mapping_in_wrong_cell": {moved},
        "host_mapping_without_host": {"ghost"},
        "node_mapped_without_host_mapping": {"lost"},
    }
    return scene


def _map_unmapped(cloud: Any, url: str, cell_uuid: str, exclude: set[str]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            uuids = [u for u in conn.execute(sa.select(instances.c.uuid)).scalars()
                     if u not in exclude]
    finally:
        engine.dispose()
    engine = sa.create_engine(cloud.api_url)
    try:
        with engine.connect() as conn:
            known = set(conn.execute(sa.select(instance_mappings.c.instance_uuid)).scalars())
    finally:
        engine.dispose()
    insert_mappings(cloud.api_url, cell_uuid, [u for u in uuids if u not in known])


def fingerprint(urls: list[str]) -> dict[str, str]:
    """database/table -> the number of rows and a digest of every row's every value."""
    digests = {}
    for url in urls:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                for table in sorted(sa.inspect(conn).get_table_names()):
                    lines = _row_lines(conn, table)
                    body = "\n".join(sorted(lines))
                    digests[f"{url}/{table}"] = (
                        f"{len(lines)}:{hashlib.sha256(body.encode()).hexdigest()}")
        finally:
            engine.dispose()
    return digests


def _row_lines(conn: sa.Connection, table: str) -> list[str]:
    """One text per row that changes whenever any of its values does.

    On MariaDB the server hashes each row, every column QUOTE()d (NULL stays the bare
    word NULL, anything else a quoted, escaped string) and joined: PyMySQL decodes rows
    in pure Python, and reading 100,000 instance rows whole took 5-8 s per fingerprint
    (test_interrupts.py's audit --fix takes three). Elsewhere each row's repr."""
    if conn.dialect.name in ("mysql", "mariadb"):
        quote = conn.dialect.identifier_preparer.quote
        columns = [c["name"] for c in sa.inspect(conn).get_columns(table)]
        values = ", ".join(f"QUOTE({quote(c)})" for c in columns)
        return list(conn.exec_driver_sql(
            f"SELECT MD5(CONCAT_WS(',', {values})) FROM {quote(table)}").scalars())
    return [repr(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).all()]


def real_mappings(cloud: Any) -> list[dict[str, Any]]:
    return [r for r in cloud.api_rows("instance_mappings") if r["project_id"] != MARKER]
