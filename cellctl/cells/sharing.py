"""Whether two cells use one database or one queue, compared where they point.

Both sides are expanded from this host's settings first (a stored template
against a literal URL, the fault of Nova bug 1923899, or two templates), then
reduced to *where* they point: for a database its backend, host, port and
database name (the driver, user, password and query do not make it another
database); for a queue its set of (host, port) and virtual host. cell0's
``none:///`` is no queue and is never shared.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from cellctl.cells.refs import CELL0_TRANSPORT_URL, CellRef
from cellctl.errors import InvalidURL
from cellctl.urls import mask, split_url

if TYPE_CHECKING:
    from cellctl.db import Databases

Kind = Literal["database", "queue"]
_DEFAULT_PORTS = {"mysql": "3306", "mariadb": "3306", "postgresql": "5432"}


def database_place(url: str | None) -> tuple[str, ...] | None:
    """(backend, host, port, database) of an expanded database URL; None if unusable."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not url:
        return None
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return ("sqlite", os.path.realpath(parsed.database or ""))
    if backend == "mariadb":
        backend = "mysql"
    port = str(parsed.port or _DEFAULT_PORTS.get(backend, ""))
    return (backend, (parsed.host or "localhost").lower(), port, parsed.database or "")


def queue_place(url: str | None) -> tuple[str, ...] | None:
    """Sorted host:port entries plus the virtual host of an expanded transport URL;
    None for no URL, ``none:///`` or a URL that cannot be parsed."""
    if not url or url.rstrip("/") == CELL0_TRANSPORT_URL.rstrip("/"):
        return None
    try:
        parts = split_url(url)
    except InvalidURL:
        return None
    hosts = sorted(f"{h.hostname.lower()}:{h.port or ''}" for h in parts.hosts)
    return (*hosts, "vhost=" + (parts.path.lstrip("/") or "/"))


def place(dbs: Databases, kind: Kind, stored: str | None) -> tuple[str, ...] | None:
    """Where a stored URL (a template or not) points, expanded from this host's settings."""
    if kind == "database":
        return database_place(dbs.expand_database_url(stored))
    return queue_place(dbs.expand_transport_url(stored))


@dataclass(frozen=True)
class Shared:
    """Cells that point at one database or queue."""

    kind: Kind
    url: str | None  # the first cell's, expanded and masked
    cells: tuple[CellRef, ...]


def user_of(dbs: Databases, cells: Iterable[CellRef], *, transport_url: str | None,
            database_connection: str | None, exclude: str | None) -> tuple[CellRef, Kind] | None:
    """The first of ``cells`` (but ``exclude``, a UUID) already using the database or the
    queue given (stored form: may be templates), and which of the two."""
    wanted: list[tuple[Kind, tuple[str, ...]]] = []
    for kind, url in _urls(database_connection, transport_url):
        where = place(dbs, kind, url)
        if where is not None:
            wanted.append((kind, where))
    for cell in cells:
        if cell.uuid == exclude:
            continue
        for kind, where in wanted:
            stored = cell.database_connection if kind == "database" else cell.transport_url
            if place(dbs, kind, stored) == where:
                return cell, kind
    return None


def _urls(database: str | None, transport: str | None) -> list[tuple[Kind, str | None]]:
    return [("database", database), ("queue", transport)]


def shared_places(dbs: Databases, cells: Iterable[CellRef]) -> list[Shared]:
    """Every database and queue that two or more of ``cells`` point at."""
    groups: dict[tuple[Kind, tuple[str, ...]], list[CellRef]] = {}
    for cell in cells:
        for kind, stored in _urls(cell.database_connection, cell.transport_url):
            where = place(dbs, kind, stored)
            if where is not None:
                groups.setdefault((kind, where), []).append(cell)
    found = []
    for (kind, _), members in groups.items():
        if len(members) > 1:
            first = members[0]
            stored = first.database_connection if kind == "database" else first.transport_url
            expanded = (dbs.expand_database_url(stored) if kind == "database"
                        else dbs.expand_transport_url(stored))
            found.append(Shared(kind, mask(expanded), tuple(members)))
    return found
