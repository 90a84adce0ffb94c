"""The ``db`` driver: heartbeats in ``services.last_seen_up``, as Nova's DbDriver.

Up while ``abs(now - (last_seen_up or created_at)) <= service_down_time``;
``updated_at`` is ignored (any admin edit bumps it). A heartbeat is
``report_count + 1``, which Nova's ``service_update`` turns into
``last_seen_up = now`` on the writer's clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cellctl.liveness import ServiceRecord

if TYPE_CHECKING:
    import datetime

    from sqlalchemy.engine import Engine


class DbDriver:
    name = "db"

    def __init__(self, *, down_seconds: int) -> None:
        self.down_seconds = down_seconds
        self.warnings: list[str] = []

    def describe(self) -> str:
        return "the cell databases (services.last_seen_up)"

    def alive(self, services: Sequence[ServiceRecord],
              now: datetime.datetime) -> list[bool | None]:
        verdicts: list[bool | None] = []
        for service in services:
            heartbeat = service.last_seen_up or service.created_at
            verdicts.append(heartbeat is not None and
                            abs((now - heartbeat).total_seconds()) <= self.down_seconds)
        return verdicts

    def report(self, cell_db: Engine, service: ServiceRecord) -> None:
        from cellctl.ops.common import utcnow
        from cellctl.tables.cell import services as sv

        now = utcnow()
        with cell_db.begin() as conn:
            conn.execute(
                sv.update().where(sv.c.host == service.host, sv.c.binary == service.binary,
                                  sv.c.deleted == 0)
                .values(report_count=sv.c.report_count + 1, last_seen_up=now, updated_at=now))

    def close(self) -> None:
        pass
