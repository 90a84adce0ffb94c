"""Which instance UUIDs are mapped, and where: the one engine behind ``audit`` and ``status``.

Instance UUIDs are compared case-blind everywhere (``fold``): MySQL's
unique keys already ignore case, and a UUID is the same UUID in either case
on PostgreSQL and SQLite too. Two ways to ask:

- ``mappings_of(api, uuids)``: the mappings of a few keys (a page, a repair's
  re-check), with one ``IN`` query per ``PAGE`` keys.
- ``walk(mappings, cells)``: every UUID of the API database and of the cells
  at once, as a merge of streams that each database sends in UUID order
  from its own index (``sorted_keys``): one pass, nothing sent back, memory
  flat. It yields only what is not simply "mapped to the one cell that has
  it".

The merge needs every stream in the same order. Databases sort by their
own collation: MySQL's (case-insensitive) order of a UUID column is the
folded order; a binary collation (SQLite, PostgreSQL's C, MySQL's ``_bin``)
is the folded order only while no key has an upper-case letter, which
``sorted_keys`` asks first, and sorts by ``lower()`` otherwise. PostgreSQL
under a language collation is told ``COLLATE "C"``. Each stream checks its
order as it goes: a database that sorts otherwise is an error, never a
silently wrong answer.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import LargeBinary, cast, func, literal, select, text, tuple_

from cellctl.db import abandon_connection
from cellctl.errors import CellctlError
from cellctl.paging import chunks
from cellctl.prefetch import prefetched
from cellctl.tables.api import instance_mappings as im

if TYPE_CHECKING:
    from sqlalchemy import Column, ColumnElement, Select
    from sqlalchemy.engine import Connection, Engine

# Keys per IN list: well under every backend's bind-parameter limit.
PAGE = 5000
# Rows per fetch of a stream (and per keyset page on SQLite).
STREAM = 2000


def fold(uuid: str) -> str:
    """The one spelling two UUIDs are compared in."""
    return uuid.lower()


@dataclass(frozen=True)
class Mapping:
    id: int
    instance_uuid: str
    cell_id: int | None


def mappings_of(api: Engine | Connection, uuids: Sequence[str]) -> dict[str, Mapping]:
    """Folded UUID -> its mapping, for those of ``uuids`` that have one.

    Where the database compares case-sensitively the lower- and upper-case
    spellings are asked too, so a key and its mapping match when either was
    written in one case (Nova writes lower case).
    """
    found: dict[str, Mapping] = {}
    query = select(im.c.id, im.c.instance_uuid, im.c.cell_id)
    for part in chunks(list(uuids), PAGE):
        keys = set(part)
        keys.update(form for key in part for form in (key.lower(), key.upper()))
        rows = _read(api, query.where(im.c.instance_uuid.in_(sorted(keys))))
        for row in rows:
            found[fold(row.instance_uuid)] = Mapping(row.id, row.instance_uuid, row.cell_id)
    return found


def _read(db: Engine | Connection, query: Any) -> list[Any]:
    if hasattr(db, "connect"):
        with db.connect() as conn:
            return list(conn.execute(query))
    return list(db.execute(query))


# --- streams in folded UUID order -----------------------------------------------


def sorted_keys(engine: Engine, column: Column[str], *others: Column[Any],
                size: int = STREAM) -> Iterator[list[Any]]:
    """Batches of rows (``column``, *``others``) of the whole table in folded ``column`` order.

    MySQL and PostgreSQL stream one query from a server-side cursor; SQLite
    reads keyset pages, each a short read, so that no read stays open while
    the same file is written.
    """
    with engine.connect() as conn:
        order = _order(conn, column)
    columns = (column, *others)
    if engine.dialect.name == "sqlite":
        return _keyset(engine, select(*columns), order, size)
    return _streamed(engine, select(*columns).order_by(*order), size)


def sorted_rows(engine: Engine, query: Select[Any], column: Column[str],
                size: int = STREAM) -> Iterator[list[Any]]:
    """Batches of ``query``'s rows, whose first column is ``column`` (a name, such as a
    host, of any characters), in folded order whatever the collation.

    The order asked for is the binary order of ``lower(column)`` (MySQL:
    ``CAST(LOWER(host) AS BINARY)``; PostgreSQL: ``COLLATE "C"``; SQLite's
    default), which is the order of Python's ``str.lower`` for every name
    the database lower-cases as Python does (all ASCII ones); ``grouped``
    checks it as it reads. The database sorts the rows (no index gives that
    order): meant for tables of hosts, not of instances.
    """
    folded: ColumnElement[Any] = func.lower(column)
    name = engine.dialect.name
    if name == "sqlite":
        return _keyset(engine, query, [folded, column], size)
    if name in ("mysql", "mariadb"):
        folded = cast(folded, LargeBinary)
    elif name == "postgresql":
        folded = folded.collate("C")
    return _streamed(engine, query.order_by(folded), size)


def _order(conn: Connection, column: Column[str]) -> list[ColumnElement[Any]]:
    """What to ORDER BY for ``column`` to come in folded order on this database."""
    name = conn.dialect.name
    if name in ("mysql", "mariadb") and not _binary_mysql(conn, column):
        return [column]  # case-insensitive: the folded order already
    if name == "postgresql" and conn.execute(select(literal("a") < literal("B"))).scalar():
        column = column.collate("C")  # type: ignore[assignment]  # a language collation
    upper = conn.execute(select(literal(1)).where(column != func.lower(column)).limit(1)).first()
    return [func.lower(column), column] if upper else [column]


def compares_folded(engine: Engine, column: Column[str]) -> bool:
    """Whether the database compares ``column``'s values case-blind (MySQL's default
    ``_ci`` collations): there ``Host-A`` and ``host-a`` are one host, as Nova finds
    them; on a binary collation (SQLite, PostgreSQL, MySQL ``_bin``) they are two."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        return False
    with engine.connect() as conn:
        return not _binary_mysql(conn, column)


def _binary_mysql(conn: Connection, column: Column[str]) -> bool:
    collation = conn.execute(text(
        "SELECT collation_name FROM information_schema.columns WHERE table_schema = "
        "DATABASE() AND table_name = :t AND column_name = :c"),
        {"t": column.table.name, "c": column.name}).scalar()
    return bool(collation) and str(collation).endswith("_bin")


def _streamed(engine: Engine, query: Any, size: int) -> Iterator[list[Any]]:
    with engine.connect() as conn:
        try:
            rows = conn.execution_options(stream_results=True, yield_per=size).execute(query)
            yield from rows.partitions(size)  # type: ignore[misc]
        except BaseException:
            abandon_connection(conn)  # stopped early (or failed): not read to the end
            raise


def _keyset(engine: Engine, base: Select[Any], order: list[ColumnElement[Any]],
            size: int) -> Iterator[list[Any]]:
    """Keyset pages of ``base`` (whose first column is the key column) in ``order``: the
    column itself, or lower(column) then the column (whose value then follows the
    columns asked for in each row)."""
    folded = len(order) > 1
    width = len(base.selected_columns)
    query = base.add_columns(*order[:-1]).order_by(*order).limit(size)
    after: Any = None
    while True:
        page = query
        if after is not None:
            # (On a grouped query too: the condition is on the grouped column alone.)
            page = query.where(tuple_(*order) > tuple_(*after) if folded else order[0] > after)
        with engine.connect() as conn:
            rows = list(conn.execute(page))
        if rows:
            last = rows[-1]
            after = (last[width], last[0]) if folded else last[0]
            yield rows
        if len(rows) < size:
            return


# --- the merge ---------------------------------------------------------------------


@dataclass
class Sighting:
    """One UUID as the databases have it: its mapping (if any), the cells with a row."""

    key: str  # folded
    mapping: Any  # (instance_uuid, id, cell_id) or None
    cells: list[tuple[int, str]] = field(default_factory=list)  # (cell id, UUID as stored)


class OutOfOrder(CellctlError):
    """A stream that is not in folded UUID order (an unusual collation)."""


API = -1  # the source number of the mapping stream (cells are numbered by their ids)


def walk(mappings: Iterable[list[Any]], cells: dict[int, Iterator[list[Any]]],
         unreachable: Callable[[int, CellctlError], None]) -> Iterator[Sighting]:
    """Merge the mapping stream (rows of instance_uuid, id, cell_id) with each cell's
    stream (rows of uuid), all in folded UUID order (``sorted_keys``).

    Yields a ``Sighting`` for every UUID except those mapped to the one cell
    that has a row for it. A cell whose stream fails is handed to ``unreachable``
    and read no further (its UUIDs from there on are not seen anywhere); a
    failure of the mapping stream ends the walk.
    """
    sources = [_tagged(API, ahead(mappings), None)]
    sources += [_tagged(cell_id, ahead(stream), unreachable) for cell_id, stream in cells.items()]
    key: str | None = None
    mapping: Any = None
    holders: list[tuple[int, str]] = []
    for next_key, source, row in heapq.merge(*sources):
        if next_key != key:
            # The common case, mapped to the one cell that has it, costs no object.
            if key is not None and not (mapping is not None and len(holders) == 1
                                        and holders[0][0] == mapping[2]):
                yield Sighting(key, mapping, holders)
            key, mapping, holders = next_key, None, []
        if source == API:
            mapping = row
        else:
            holders.append((source, row[0]))
    if key is not None and not (mapping is not None and len(holders) == 1
                                and holders[0][0] == mapping[2]):
        yield Sighting(key, mapping, holders)


def grouped(sources: dict[Hashable, Iterable[list[Any]]],
            unreachable: Callable[[Any, CellctlError], None] | None = None
            ) -> Iterator[tuple[str, list[tuple[Any, Any]]]]:
    """Merge streams of rows in folded order of their first column (``sorted_rows``):
    each folded key with its (source, row) pairs, every key once.

    A source whose stream fails is handed to ``unreachable`` (when given, and the
    error is not ``OutOfOrder``) and read no further; sources are read
    ahead, each on a thread of its own.
    """
    counter = itertools.count()
    merged = heapq.merge(*[((key, next(counter), tag, row) for key, tag, row in
                            _tagged(tag, ahead(batches), unreachable))
                           for tag, batches in sources.items()])
    # (the counter: rows of one source with one key never compare their rows)
    for key, group in itertools.groupby(merged, key=lambda item: item[0]):
        yield key, [(tag, row) for _, _, tag, row in group]


def ahead(batches: Iterable[list[Any]]) -> Iterator[list[Any]]:
    """``batches`` read on a thread of their own, a batch or two ahead (so that the
    streams of several databases are read at once); the source is closed at the end."""
    try:
        yield from prefetched(batches, depth=1)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()


def _tagged(source: Any, batches: Iterable[list[Any]],
            unreachable: Callable[[Any, CellctlError], None] | None
            ) -> Iterator[tuple[str, Any, Any]]:
    last = ""
    try:
        for batch in batches:
            for row in batch:
                key = row[0].lower()
                if key < last:
                    raise OutOfOrder(f"{row[0]} came after {last}: the database does not "
                                     "sort instance UUIDs the way the merge expects")
                last = key
                yield key, source, row
    except CellctlError as exc:
        if unreachable is None or isinstance(exc, OutOfOrder):
            raise
        unreachable(source, exc)
