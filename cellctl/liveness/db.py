"""The database driver: heartbeats in ``services.last_seen_up``.

A service reports "I'm OK" by bumping ``report_count``, which sets
``last_seen_up``; it is up while that heartbeat (or ``created_at`` if it never
reported) is at most ``service_down_time`` seconds from now, in either
direction (``nova.servicegroup.drivers.db``). ``updated_at`` is ignored: any
admin edit bumps it (Nova bug 1420848).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cellctl.clock import utcnow
from cellctl.liveness.records import ServiceRecord

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


def is_up(*, last_seen_up: datetime.datetime | None, created_at: datetime.datetime | None,
          now: datetime.datetime, down_seconds: int) -> bool:
    heartbeat = last_seen_up or created_at
    if heartbeat is None:
        return False
    return abs((now - heartbeat).total_seconds()) <= down_seconds


class DbDriver:
    name = "db"

    def __init__(self, down_seconds: int) -> None:
        self.down_seconds = down_seconds

    def describe(self) -> str:
        return "the cell databases (services.last_seen_up)"

    def alive(self, services: Sequence[ServiceRecord],
              now: datetime.datetime) -> list[bool | None]:
        return [is_up(last_seen_up=s.last_seen_up, created_at=s.created_at, now=now,
                      down_seconds=self.down_seconds) for s in services]

    def take_warnings(self) -> list[str]:
        return []

    def report(self, cell_db: Engine, service: ServiceRecord) -> datetime.datetime:
        """``report_count + 1``, ``last_seen_up`` and ``updated_at`` set to now, in one UPDATE.

        Raises LookupError when the cell has no live such service (any more).
        """
        from cellctl.tables.cell import services as sv

        now = utcnow()
        with cell_db.begin() as conn:
            updated = conn.execute(
                sv.update().where(sv.c.host == service.host, sv.c.binary == service.binary,
                                  sv.c.deleted == 0)
                .values(report_count=sv.c.report_count + 1, last_seen_up=now, updated_at=now)
            ).rowcount
        if not updated:
            raise LookupError(service.host)
        return now

    def close(self) -> None:
        pass
