"""Errors an operation raises when it cannot produce a result.

Expected outcomes (a cell not found, a host still in use) are not errors: an
operation returns them in its Result with the documented exit code. These
exceptions are for the rest — bad settings, unreachable or unready databases —
and the CLI turns each into one line on stderr and the command's failure code.
Messages must already be masked: they are printed as they are.
"""


class CellctlError(Exception):
    """Base class; ``code`` overrides the command's failure code when set."""

    code: int | None = None

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ConfigError(CellctlError):
    """A setting is missing, unreadable or malformed."""


class InvalidURL(CellctlError):
    """A database or transport URL cannot be used."""


class DatabaseError(CellctlError):
    """A database could not be reached or used (down, wrong password, no schema).

    ``errno`` is the server's error number when the driver gave one (MySQL's
    1213 deadlock, say), so callers can tell a transaction worth redoing.
    """

    def __init__(self, message: str, *, url: str | None = None, code: int | None = None,
                 errno: int | None = None, driver_text: str | None = None,
                 connecting: bool = False) -> None:
        super().__init__(message, code=code)
        self.url = url
        self.errno = errno
        # SQLAlchemy's own text of the error (``(pymysql.err.OperationalError) (2003,
        # ...)`` and its "Background" line), which nova-manage prints unmasked: only
        # the nova-manage face shows it, where nova-manage would.
        self.driver_text = driver_text
        self.connecting = connecting  # no connection was made (oslo.db's DBConnectionError)


class SchemaMissing(DatabaseError):
    """The database is reachable but holds no cellctl or Nova schema."""


class UnknownRevision(CellctlError):
    """alembic cannot reach the revision asked for (it knows no such revision)."""

    def __init__(self, message: str, *, alembic_text: str) -> None:
        super().__init__(message)
        self.alembic_text = alembic_text  # alembic's CommandError, as nova-manage shows it


def nova_exception(exc: CellctlError) -> tuple[str, str]:
    """The exception nova-manage's traceback would end with, and its first line."""
    if isinstance(exc, UnknownRevision):
        return "CommandError", exc.alembic_text
    if isinstance(exc, DatabaseError) and exc.driver_text:
        return ("DBConnectionError" if exc.connecting else "DBError",
                exc.driver_text.splitlines()[0])
    return type(exc).__name__, str(exc)


def nova_error_text(exc: CellctlError) -> str:
    """``str()`` of the error nova-manage would have caught: SQLAlchemy's text of a
    driver error (as oslo.db keeps it), alembic's of a revision."""
    if isinstance(exc, UnknownRevision):
        return exc.alembic_text
    if isinstance(exc, DatabaseError) and exc.driver_text:
        return exc.driver_text
    return str(exc)
