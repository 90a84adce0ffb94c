"""Engines for the API database and the cell databases, and their errors.

Every engine turns driver errors into one-line DatabaseError messages that
name the database with its password masked, so no command ever shows a
traceback or a secret for a database that is down, locked or misconfigured.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cellctl.errors import ConfigError, DatabaseError, InvalidURL, SchemaMissing
from cellctl.settings import Settings
from cellctl.urls import expand_template, mask, mask_text
from cellctl.writes.transactions import LOCK_TIMEOUT

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine, ExceptionContext

CONNECT_TIMEOUT = 10  # seconds; a database that does not answer is reported, not waited on

_MISSING_TABLE_MARKERS = ("no such table", "doesn't exist", "does not exist", "undefinedtable")


def normalize_url(url: str) -> str:
    """Pick an installed driver when the URL names none (``postgresql://``, ``mysql://``)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidURL(f"Invalid database connection URL: {mask(url)}") from None
    if parsed.drivername == "postgresql" and not _installed("psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername == "mysql" and not _installed("MySQLdb"):
        parsed = parsed.set(drivername="mysql+pymysql")
    else:
        return url
    return parsed.render_as_string(hide_password=False)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def create_engine(url: str, *, label: str = "database", must_exist: bool = True,
                  connect_timeout: float | None = None,
                  read_timeout: float | None = None) -> Engine:
    """An engine for ``url`` whose errors are one-line DatabaseErrors naming ``label``.

    With ``must_exist`` a SQLite file that is not there is an error rather than
    silently created empty. ``connect_timeout`` (seconds, default
    CONNECT_TIMEOUT) bounds how long connecting to a database server may take.
    ``read_timeout`` (seconds, MySQL/MariaDB only: libpq has no such bound)
    bounds each wait for a connected server's answer, so that one that stops
    answering mid-command (frozen, or cut off by the network) is given up on.
    """
    import sqlalchemy
    from sqlalchemy import event
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    real_url = normalize_url(url)
    try:
        parsed = sqlalchemy.engine.make_url(real_url)
        backend = parsed.get_backend_name()
        connect_args: dict[str, object] = {}
        if backend == "sqlite":
            _check_sqlite_path(parsed.database, url, label, must_exist)
            connect_args["timeout"] = LOCK_TIMEOUT
        elif backend in ("mysql", "mariadb", "postgresql"):
            connect_args["connect_timeout"] = _driver_timeout(
                backend, connect_timeout or CONNECT_TIMEOUT
            )
            if read_timeout is not None and backend != "postgresql":
                connect_args["read_timeout"] = connect_args["write_timeout"] = read_timeout
        engine = sqlalchemy.create_engine(real_url, connect_args=connect_args)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise InvalidURL(f"Cannot use {label} {mask(url)}: {_first_line(exc)}") from None

    if backend == "sqlite":
        _make_sqlite_transactional(engine)
    if parsed.get_driver_name() == "pymysql":
        @event.listens_for(engine, "do_connect")
        def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            from cellctl.pymysql_tls import connect

            return connect(*cargs, **cparams)  # PyMySQL's own, its TLS context on demand

    @event.listens_for(engine, "handle_error")
    def _one_line(context: ExceptionContext) -> None:
        # MySQL's has_table() probes with DESCRIBE and expects to catch the
        # error itself; it marks the statement so, but SQLAlchemy only honours
        # the mark at connection level, so honour it here.
        execution = context.execution_context
        if execution is not None and execution.execution_options.get("skip_user_error_events"):
            return
        if not isinstance(context.original_exception, Exception):
            return  # an interrupt (cellctl.interrupts) stays one: never "cell unreachable"
        error = translate_error(context.original_exception, url, label)
        error.driver_text = str(context.sqlalchemy_exception)
        error.connecting = context.connection is None or context.is_disconnect
        raise error from None

    return engine


def _driver_timeout(backend: str, seconds: float) -> float:
    # libpq only takes whole seconds (and waits at least 2).
    return max(1, math.ceil(seconds)) if backend == "postgresql" else seconds


def _check_sqlite_path(path: str | None, url: str, label: str, must_exist: bool) -> None:
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    file = Path(path)
    if not file.parent.is_dir():
        raise DatabaseError(
            f"Cannot open {label} {mask(url)}: directory {file.parent} does not exist", url=url
        )
    if must_exist and not file.exists():
        raise SchemaMissing(f"The {label} {mask(url)} does not exist", url=url)


def _make_sqlite_transactional(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, decide where transactions start.

    pysqlite delays BEGIN until the first write, so a read-then-write
    transaction is not isolated; the documented recipe emits BEGIN itself.
    A write transaction asks for ``BEGIN IMMEDIATE`` to take the write lock
    up front (see ``write_transaction``).
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("cellctl_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def abandon_stream(dbapi_connection: Any) -> None:
    """Let a connection go in the middle of a streamed (unbuffered) MySQL read, quietly.

    PyMySQL finishes an unbuffered result by reading the rest of the stream,
    both when its cursor is closed and when the result is garbage collected.
    On a broken connection (a killed server, a moved virtual IP) that read
    fails inside ``__del__``, and Python prints "Exception ignored in:
    <function MySQLResult.__del__ ...>" with a traceback after cellctl's one
    error line; on a healthy one it would read every remaining row. Marking
    the result finished first makes both a no-op; the caller then
    invalidates the connection, which the server discards with the stream.
    Any other driver is left alone.
    """
    result = getattr(dbapi_connection, "_result", None)  # PyMySQL's result in progress
    if result is not None and getattr(result, "unbuffered_active", False):
        result.unbuffered_active = False


def abandon_connection(conn: Connection) -> None:
    """Drop ``conn`` in the middle of a streamed read (stopped early, or failed) rather
    than read the rest of it: ``abandon_stream``, then the pool discards it."""
    abandon_stream(conn.connection.dbapi_connection)
    conn.invalidate()


def wake_reader(dbapi_connection: Any) -> None:
    """End a PyMySQL connection's stream now, for a thread blocked reading it (a
    query the server is still sorting): its read sees the end and fails at once,
    instead of when the server answers. Any other driver is left alone."""
    sock = getattr(dbapi_connection, "_sock", None)  # PyMySQL's socket, None once closed
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def translate_error(exc: BaseException, url: str, label: str) -> DatabaseError:
    """One masked line for a driver error."""
    detail = mask_text(_first_line(exc), [url])
    if any(marker in detail.lower() for marker in _MISSING_TABLE_MARKERS) and (
        "table" in detail.lower() or "relation" in detail.lower()
    ):
        return SchemaMissing(
            f"The {label} {mask(url)} has no cellctl or Nova schema ({detail})", url=url
        )
    return DatabaseError(f"Cannot use {label} {mask(url)}: {detail}", url=url,
                         errno=_errno(exc))


def _errno(exc: BaseException) -> int | None:
    """The server's error number (PyMySQL and mysqlclient give it as ``args[0]``)."""
    args = getattr(getattr(exc, "orig", None) or exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip() or type(orig).__name__
    # PyMySQL renders (code, "message"): keep the message readable.
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    if len(args) == 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = args[1]
    return text.splitlines()[0] if text else type(orig).__name__


class Databases:
    """The databases a command may touch, opened on first use and cached.

    Cell URLs from ``cell_mappings`` may be Nova templates; they are expanded
    against this host's own settings, as every Nova service does, once per
    stored URL for the life of the object (one command run): the probe, the
    engine, the unreachable mark, the sharing check and the listing all take
    the same resolved value.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engines: dict[str, Engine] = {}
        # Cell databases that did not answer a probe: for the rest of the command
        # they fail at once instead of making every use wait for a timeout again.
        self._unreachable: dict[str, str] = {}
        # (kind, stored URL) -> the URL expanded from this host's settings.
        self._resolved: dict[tuple[Literal["database", "transport"], str], str | None] = {}

    @property
    def api_url(self) -> str:
        url = self.settings.api_database_connection.value
        if not url:
            argument = self.settings.argument("api_database_connection",
                                              "--api-database-connection")
            raise ConfigError(f"No API database configured: use {argument}, "
                              "CELLCTL_API_DATABASE_CONNECTION or [api_database] connection")
        return url

    @property
    def api(self) -> Engine:
        return self._engine(self.api_url, "API database", kind="api")

    @property
    def local_cell(self) -> Engine:
        """The cell database of ``[database] connection`` (this host's own cell)."""
        return self._engine(self.local_cell_url, "cell database", kind="cell")

    @property
    def local_cell_url(self) -> str:
        """``[database] connection``; ConfigError, saying how to set it, when it is not set."""
        url = self.settings.database_connection.value
        if not url:
            argument = self.settings.argument("database_connection", "--database_connection")
            raise ConfigError(f"No cell database configured: use {argument}, "
                              "CELLCTL_DATABASE_CONNECTION or [database] connection")
        return url

    def cell(self, stored_url: str | None, label: str = "cell database", *,
             connect_timeout: float | None = None,
             read_timeout: float | None = None) -> Engine:
        """The engine of a cell's database; the timeouts apply if it is opened now."""
        url = self.expand_database_url(stored_url)
        if not url:
            raise DatabaseError(f"The {label} has no database connection URL")
        if url in self._unreachable:
            raise DatabaseError(self._unreachable[url], url=url)
        return self._engine(url, label, kind="cell", connect_timeout=connect_timeout,
                            read_timeout=read_timeout)

    def mark_unreachable(self, stored_url: str | None, reason: str) -> None:
        """Remember that a cell database did not answer; ``cell()`` then raises ``reason``."""
        url = self.expand_database_url(stored_url)
        if url:
            self._unreachable[url] = reason

    def expand_database_url(self, stored_url: str | None) -> str | None:
        """A cell's stored database URL (maybe a template), resolved once per command."""
        return self._resolve("database", stored_url)

    def expand_transport_url(self, stored_url: str | None) -> str | None:
        """A cell's stored transport URL (maybe a template), resolved once per command."""
        return self._resolve("transport", stored_url)

    def _resolve(self, kind: Literal["database", "transport"],
                 stored_url: str | None) -> str | None:
        if not stored_url:
            return stored_url
        key = (kind, stored_url)
        if key not in self._resolved:
            local = (self.settings.database_connection if kind == "database"
                     else self.settings.transport_url).value
            self._resolved[key] = expand_template(stored_url, local)
        return self._resolved[key]

    def engine_for_sync(self, url: str, label: str) -> Engine:
        """An engine that may create its SQLite file (for ``sync``)."""
        return self._engine(url, label, kind=None, must_exist=False)

    def _engine(self, url: str, label: str, *, kind: Literal["api", "cell"] | None,
                must_exist: bool = True,
                connect_timeout: float | None = None,
                read_timeout: float | None = None) -> Engine:
        engine = self._engines.get(url)
        if engine is None:
            embedded = url in self.settings.embedded_urls
            engine = create_engine(url, label=label, must_exist=must_exist and not embedded,
                                   connect_timeout=connect_timeout, read_timeout=read_timeout)
            if embedded and kind is not None:
                from cellctl import migrate

                # cellctl's own SQLite defaults are created and kept at head on use.
                migrate.ensure_current(engine, kind)
            self._engines[url] = engine
        return engine

    def dispose(self) -> None:
        """Close every connection pool opened so far; the object stays usable."""
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    def __enter__(self) -> Databases:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.dispose()
