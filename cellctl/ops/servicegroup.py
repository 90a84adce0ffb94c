"""Service liveness exactly as Nova's database service-group driver decides it.

A service reports "I'm OK" by bumping ``report_count``, which sets
``last_seen_up``; it is up while that heartbeat (or ``created_at`` if it never
reported) is at most ``service_down_time`` seconds from now, in either
direction, and it is not forced down. ``updated_at`` is ignored: any admin
edit bumps it (Nova bug 1420848).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

COMPUTE_BINARY = "nova-compute"
_LOOKUP_BATCH = 1000  # hosts per IN query

# The state of a host whose cell database could not be read.
UNKNOWN = "unknown"
# The state of a mapped host whose cell has no nova-compute service for it.
NO_SERVICE = "no service"


def is_up(
    *,
    forced_down: bool | None,
    last_seen_up: datetime.datetime | None,
    created_at: datetime.datetime | None,
    now: datetime.datetime,
    down_seconds: int,
) -> bool:
    if forced_down:
        return False
    heartbeat = last_seen_up or created_at
    if heartbeat is None:
        return False
    return abs((now - heartbeat).total_seconds()) <= down_seconds


def host_state(*, disabled: bool | None, forced_down: bool | None, up: bool) -> str:
    """One word for a host's compute service, the most urgent first.

    An operator acts first on a service an admin forced down, then on one that
    stopped reporting; a disabled service that still reports is healthy but
    takes no new instances.
    """
    if forced_down:
        return "forced down"
    if not up:
        return "down"
    return "disabled" if disabled else "up"


def compute_host_states(
    engine: Engine,
    hosts: Iterable[str],
    *,
    now: datetime.datetime,
    down_seconds: int,
) -> dict[str, str]:
    """State of each of ``hosts``'s nova-compute service in one cell database.

    One query per batch of hosts; hosts with no live service get NO_SERVICE.
    """
    from sqlalchemy import select

    from cellctl.tables.cell import services as sv

    wanted = sorted(set(hosts))
    states = dict.fromkeys(wanted, NO_SERVICE)
    columns = (sv.c.host, sv.c.disabled, sv.c.forced_down, sv.c.last_seen_up, sv.c.created_at)
    with engine.connect() as conn:
        for start in range(0, len(wanted), _LOOKUP_BATCH):
            batch = wanted[start : start + _LOOKUP_BATCH]
            rows = conn.execute(
                select(*columns).where(
                    sv.c.binary == COMPUTE_BINARY, sv.c.deleted == 0, sv.c.host.in_(batch)
                )
            )
            for row in rows:
                if row.host in states:
                    states[row.host] = state_of(row, now=now, down_seconds=down_seconds)
    return states


def state_of(row: Any, *, now: datetime.datetime, down_seconds: int) -> str:
    """``host_state`` of a services row (any object with the services columns)."""
    up = is_up(forced_down=row.forced_down, last_seen_up=row.last_seen_up,
               created_at=row.created_at, now=now, down_seconds=down_seconds)
    return host_state(disabled=row.disabled, forced_down=row.forced_down, up=up)

