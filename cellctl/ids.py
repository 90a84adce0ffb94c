"""UUIDs in Nova's form: lower case, dashed."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable


def canonical_uuid(value: str | None) -> str | None:
    """The UUID in Nova's form, or None if ``value`` is not one."""
    if not value:
        return None
    try:
        return str(uuidlib.UUID(value))
    except ValueError:
        return None


class NotAUUID(ValueError):
    """``value`` is not a UUID."""

    def __init__(self, value: str) -> None:
        super().__init__(f"not a UUID: {value!r}")
        self.value = value


def canonical_uuids(values: Iterable[str]) -> list[str]:
    """``values`` in Nova's form, each once, in the order first given; NotAUUID for the
    first that is not a UUID."""
    found: dict[str, None] = {}
    for value in values:
        canonical = canonical_uuid(value)
        if canonical is None:
            raise NotAUUID(value)
        found[canonical] = None
    return list(found)


def new_uuid() -> str:
    return str(uuidlib.uuid4())
