"""Check the URL settings once, where settings resolve, so a typo in a port or a driver
name is one ``ConfigError`` line naming its source instead of a crash at first use."""

from __future__ import annotations

from collections.abc import Sequence

from cellctl.errors import ConfigError, InvalidURL

# (value, source): a setting's value and where it came from ("--transport-url", a file...)
Given = tuple[str | None, str]


def check_urls(databases: Sequence[Given], transport: Given) -> None:
    """Raise ConfigError for the first malformed database or transport URL.

    Malformed only: a well-formed URL that names no database is for the command that
    needs one to refuse (``map_cell0`` says so where nova-manage does).

    The message shows the URL as written (passwords masked), what is wrong with it and
    where the value came from (a flag, a variable, a file and section).
    """
    from cellctl.urls import mask_loose, validate_database_url, validate_transport_url

    for value, source in databases:
        if value:
            try:
                validate_database_url(value, names_database=False)
            except InvalidURL as exc:
                raise ConfigError(f"{exc} (from {source})") from None
    value, source = transport
    if value:
        try:
            validate_transport_url(value)
        except InvalidURL as exc:
            detail = str(exc)
            if "No scheme" in detail or "host part" in detail:
                detail = f"{detail} in {mask_loose(value)}"
            raise ConfigError(f"Invalid transport URL: {detail} (from {source})") from None
