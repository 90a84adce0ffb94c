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
                 errno: int | None = None) -> None:
        super().__init__(message, code=code)
        self.url = url
        self.errno = errno


class SchemaMissing(DatabaseError):
    """The database is reachable but holds no cellctl or Nova schema."""
