"""The URLs a new cell gets: from the caller, else from the configuration (saying so)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cellctl.errors import InvalidURL
from cellctl.result import Result
from cellctl.settings import Setting
from cellctl.urls import validate_database_url, validate_transport_url

if TYPE_CHECKING:
    from cellctl.db import Databases


# How nova-manage names the options it falls back on.
_NOVA_OPTION_NAMES = {"transport_url": "[DEFAULT]/transport_url",
                      "database_connection": "[database]/connection"}


def url_or_fallback(
    given: str | None, setting: Setting[str], argument: str, result: Result
) -> str | None:
    """The URL given by the caller, else the configured one (saying so, as Nova does).

    ``argument`` names it as the caller passes it (``Settings.argument``).
    """
    if given:
        return given
    if setting.value:
        if argument.startswith("--"):  # nova-manage's words, which tools may read
            result.info(f"{argument} not provided in the command line, using the value "
                        f"{_NOVA_OPTION_NAMES.get(setting.name, setting.name)} from the "
                        "configuration file")
        else:
            result.info(f"{argument.rstrip('=')} not provided by the caller, using the "
                        f"value from {setting.source}")
    return setting.value or None


# The exit code of every command that needs a transport URL and has none, or a bad one.
BAD_TRANSPORT_URL = 1


def resolve_transport_url(dbs: Databases, transport_url: str | None, result: Result) -> str | None:
    """The transport URL given, else the configured one; None (BAD_TRANSPORT_URL recorded)
    if missing or invalid. Templates are validated expanded and returned as written."""
    argument = dbs.settings.argument("transport_url", "--transport-url")
    transport = url_or_fallback(transport_url, dbs.settings.transport_url, argument, result)
    if not transport:
        result.error(f"Must specify {argument} if [DEFAULT]/transport_url is not set in "
                     "the configuration file.", BAD_TRANSPORT_URL)
        return None
    try:
        validate_transport_url(dbs.expand_transport_url(transport) or "")
    except InvalidURL as exc:
        result.error(f"Invalid transport URL: {exc}", BAD_TRANSPORT_URL)
        return None
    return transport


def invalid_urls(dbs: Databases, transport: str | None, database: str | None) -> str | None:
    """The error line for the first invalid URL given to a cell, or None; templates are
    checked expanded (``create_cell``, ``update_cell``, ``cell ensure``)."""
    try:
        if transport is not None:
            validate_transport_url(dbs.expand_transport_url(transport) or "")
    except InvalidURL as exc:
        return f"Invalid transport URL: {exc}"
    try:
        if database is not None:
            validate_database_url(dbs.expand_database_url(database) or "")
    except InvalidURL as exc:
        return str(exc)
    return None
