"""UUIDs in Nova's form: lower case, dashed."""

from __future__ import annotations

import uuid as uuidlib


def canonical_uuid(value: str | None) -> str | None:
    """The UUID in Nova's form, or None if ``value`` is not one."""
    if not value:
        return None
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        return None


def new_uuid() -> str:
    return str(uuidlib.uuid4())
