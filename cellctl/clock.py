"""The one clock: naive UTC, as Nova stores every timestamp."""

from __future__ import annotations

import datetime


def utcnow() -> datetime.datetime:
    """Now in UTC without a time zone, the form of every ``DATETIME`` column Nova writes."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
