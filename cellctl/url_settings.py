"""Check the URL settings once, where settings resolve, so a typo in a port or a driver
name is one ``ConfigError`` line naming its source instead of a crash at first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cellctl.errors import ConfigError, InvalidURL

if TYPE_CHECKING:
    from cellctl.settings import Settings


def check_urls(settings: Settings) -> None:
    """Raise ConfigError for the first malformed database or transport URL.

    The message shows the URL as written (passwords masked), what is wrong with it and
    where the value came from (a flag, a variable, a file and section).
    """
    from cellctl.urls import mask_loose, validate_database_url, validate_transport_url

    for setting in (settings.api_database_connection, settings.database_connection):
        if setting.value:
            try:
                validate_database_url(setting.value)
            except InvalidURL as exc:
                raise ConfigError(f"{exc} (from {setting.source})") from None
    transport = settings.transport_url
    if transport.value:
        try:
            validate_transport_url(transport.value)
        except InvalidURL as exc:
            detail = str(exc)
            if "No scheme" in detail or "host part" in detail:
                detail = f"{detail} in {mask_loose(transport.value)}"
            raise ConfigError(f"Invalid transport URL: {detail} (from {transport.source})") \
                from None
