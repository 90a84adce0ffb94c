"""Reading big tables a page at a time, and sending big key lists a batch at a time.

Cells and the API database are different databases, so nothing joins across
them: every bulk command reads one side in keyset pages (an index range scan
each, nothing held open between pages) and looks each page up on the other
side with one ``IN`` query. Memory stays at one page whatever the table's size.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Select
    from sqlalchemy.engine import Engine, Row

# Rows per page and keys per IN list: few round trips, and well under every
# backend's limit on bound parameters per statement.
BATCH_SIZE = 1000

T = TypeVar("T")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a listing of 100,000 rows is built.

    CPython starts a collection every 700 new containers (each row's tuple is
    one) and now and then walks every object alive: ~15% of the CPU of such a
    listing, for rows that hold no cycles. Restored on the way out.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def chunks(items: Sequence[T], size: int | None = None) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size`` (default BATCH_SIZE)."""
    size = size or BATCH_SIZE
    for start in range(0, len(items), size):
        yield items[start : start + size]


def page_after(engine: Engine, query: Select[Any], after: Any = None, *,
               key: ColumnElement[Any] | None = None, size: int | None = None) -> list[Row[Any]]:
    """The next ``size`` rows of ``query`` in ``key`` order whose key is above ``after``.

    ``key`` (default: the query's first column) must be unique, or at least
    never split across pages (a grouped column). ``after`` None starts at the
    top. A short connection per page: no read stays open while the same
    database is written, which SQLite would otherwise make the writer wait for.
    """
    column = query.selected_columns[0] if key is None else key
    page = query.order_by(column).limit(size or BATCH_SIZE)
    if after is not None:
        page = page.where(column > after)
    with engine.connect() as conn:
        return list(conn.execute(page))


def keyset_pages(engine: Engine, query: Select[Any], *, key: ColumnElement[Any] | None = None,
                 after: Any = None, size: int | None = None) -> Iterator[list[Row[Any]]]:
    """Every row of ``query``, a page at a time (see ``page_after``)."""
    size = size or BATCH_SIZE
    column = query.selected_columns[0] if key is None else key
    while True:
        rows = page_after(engine, query, after, key=column, size=size)
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1]._mapping[column]


def count_rows(engine: Engine, query: Select[Any]) -> int:
    """How many rows ``query`` gives (one scan: only where a progress bar shows it)."""
    from sqlalchemy import func, select

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar() or 0)
