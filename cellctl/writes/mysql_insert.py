"""Multi-row ``INSERT IGNORE`` for PyMySQL with the values written out by the driver.

PyMySQL's executemany also folds rows into multi-row INSERTs, but it
escapes every value through several layers of Python calls per row; on a
million instance mappings that client work took longer than the server's
(measured: about 30 µs of CPU per row, against the server inserting 20,000+
rows/s). Here a column's strings go to the connection's own escaping (which
honours NO_BACKSLASH_ESCAPES) in one call, and the repeated non-string values
of a batch (cell id, flags, timestamps) are escaped once each. Same SQL, same driver
escaping: only the overhead is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

# A statement's characters when the server's max_allowed_packet is unknown: below
# every server's default (PyMySQL's own executemany uses the same bound).
DEFAULT_STATEMENT_CHARS = 1_000_000
# And at most, whatever the server allows: a map_instances batch (20,000 mappings,
# about 2.6 MB) is one statement, not three (measured: its inserts 4-8% faster).
MAX_STATEMENT_CHARS = 4_000_000
# Bytes a character can take in the statement (utf8mb4), for the server's limit.
_BYTES_PER_CHAR = 4
# Joins a column's strings for one escape call: a control character that neither
# backslash escaping nor NO_BACKSLASH_ESCAPES quoting changes.
_SEPARATOR = "\x01"


@dataclass(frozen=True)
class Same:
    """A column with one value for every row (``LiteralRows.texts_of_columns``)."""

    value: Any


def speaks(conn: Connection) -> bool:
    """Is ``conn`` PyMySQL's, the driver this module writes for?"""
    return conn.dialect.name in ("mysql", "mariadb") and conn.dialect.driver == "pymysql"


class LiteralRows:
    """Rows of ``table`` (dicts with ``columns``) as the SQL text of their values,
    escaped by ``conn``'s driver, and ``INSERT IGNORE`` statements made of them.

    ``texts`` touches no connection after this object is made: ``escape`` reads
    only the driver connection's character set and its ``NO_BACKSLASH_ESCAPES``
    status (the server's ``sql_mode``), so rows can be written out in another
    thread while ``insert`` runs on any connection of the same engine.
    """

    def __init__(self, conn: Connection, table: Table, columns: list[str]) -> None:
        self.escape: Callable[[Any], str] = (
            conn.connection.dbapi_connection.escape)  # type: ignore[union-attr]
        preparer = conn.dialect.identifier_preparer
        self.columns = columns
        # SQLAlchemy's own conversions for these column types, as executemany would apply them.
        self.processors = [table.c[c].type.bind_processor(conn.dialect) for c in columns]
        self.head = (f"INSERT IGNORE INTO {preparer.format_table(table)} "
                     f"({', '.join(preparer.quote(c) for c in columns)}) VALUES ")
        self.limit = min(MAX_STATEMENT_CHARS, DEFAULT_STATEMENT_CHARS)
        if conn.engine is not None:
            from cellctl.writes.galera import write_limits

            # Statements as long as the server's max_allowed_packet allows, in bytes.
            packet = write_limits(conn.engine).max_statement
            if packet:
                self.limit = min(MAX_STATEMENT_CHARS, max(packet // _BYTES_PER_CHAR, 1))

    def texts(self, rows: list[dict[str, Any]]) -> list[str]:
        """Each row's ``(v1,v2,..)``."""
        return self.texts_of_columns([[row[c] for row in rows] for c in self.columns],
                                     len(rows))

    def texts_of_columns(self, columns: Sequence[Sequence[Any] | Same], count: int
                         ) -> list[str]:
        """Each of ``count`` rows' ``(v1,v2,..)``, from the values column by column (in
        ``self.columns``' order); a ``Same`` column has one value for every row. Each
        column is escaped at once (``_literals``), then the rows are put together by
        one ``str.format`` per row, the ``Same`` values already written in it."""
        pieces: list[str] = []
        varying: list[list[str]] = []
        for values, process in zip(columns, self.processors, strict=True):
            if isinstance(values, Same):
                (text,) = _literals([values.value], process, self.escape)
                pieces.append(text.replace("{", "{{").replace("}", "}}"))
            else:
                pieces.append("{}")
                varying.append(_literals(list(values), process, self.escape))
        template = "(" + ",".join(pieces) + ")"
        if not varying:
            return [template.format()] * count
        return list(map(template.format, *varying))

    def statements(self, texts: Sequence[str]) -> list[str]:
        """The ``INSERT IGNORE`` statements of the rows of ``texts`` (one, when they fit)."""
        room = max(self.limit - len(self.head), 1)
        if sum(map(len, texts)) + len(texts) <= room:
            return [self.head + ",".join(texts)] if texts else []
        return [self.head + values for values in _chunks(iter(texts), room)]

    @staticmethod
    def execute(conn: Connection, statements: Iterable[str]) -> int:
        """Run ``statements`` (made by ``statements``); how many rows were new."""
        # no_parameters: the text goes to cursor.execute as is, with no %-formatting.
        raw = conn.execution_options(no_parameters=True)
        return sum(int(raw.exec_driver_sql(statement).rowcount or 0)
                   for statement in statements)

    def insert(self, conn: Connection, texts: Sequence[str]) -> int:
        """Insert the rows of ``texts``, skipping duplicates; how many were new."""
        return self.execute(conn, self.statements(texts))


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows`` (all with the same keys), skipping duplicates; return how many were new."""
    literal = LiteralRows(conn, table, list(rows[0]))
    return literal.insert(conn, literal.texts(rows))


def _literals(values: list[Any], process: Callable[[Any], Any] | None,
              escape: Callable[[Any], str]) -> list[str]:
    """The SQL literals of one column's ``values``, as ``escape`` writes each one.

    A column of strings is escaped in one call, joined by a character that
    escaping leaves alone and none of them contains, then split again: the
    same text as escaping each string, without a Python call per value. Other
    columns repeat few values (cell id, flags, timestamps): each distinct one
    is escaped once.
    """
    if process is not None:
        values = [process(v) for v in values]
    if values and all(type(v) is str for v in values):
        joined = _SEPARATOR.join(values)
        if joined.count(_SEPARATOR) == len(values) - 1:
            # escape() quotes the whole: 'a<sep>b' -> 'a'<sep>'b' -> ["'a'", "'b'"]
            return escape(joined).replace(_SEPARATOR, f"'{_SEPARATOR}'").split(_SEPARATOR)
    repeated: dict[tuple[type, Any], str] = {}
    out = []
    for value in values:
        key = (type(value), value)
        text = repeated.get(key)
        if text is None:
            text = repeated[key] = escape(value)
        out.append(text)
    return out


def _chunks(tuples: Iterator[str], limit: int) -> Iterator[str]:
    """Comma-joined runs of ``tuples``, each at most ``limit`` characters (or one tuple)."""
    run: list[str] = []
    size = 0
    for item in tuples:
        if run and size + len(item) + 1 > limit:
            yield ",".join(run)
            run, size = [], 0
        run.append(item)
        size += len(item) + 1
    if run:
        yield ",".join(run)
