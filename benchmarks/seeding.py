"""Seeding benchmark data in bulk, as Nova writes it (shared by the benchmark scripts)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from cellctl.clock import utcnow
from cellctl.tables.cell import compute_nodes, services
from cellctl.tables.rows import compute_node_row, service_row


def seed_compute_hosts(url: str, count: int, name: Callable[[int], str],
                       chunk: int = 5000) -> None:
    """``count`` compute hosts named ``name(n)``: a nova-compute service and its compute
    node each, ``chunk`` hosts per transaction."""
    engine = sa.create_engine(url)
    now = utcnow()
    try:
        for first in range(0, count, chunk):
            hosts = [name(n) for n in range(first, min(count, first + chunk))]
            with engine.begin() as conn:
                conn.execute(services.insert(), [service_row(h, "nova-compute", now=now)
                                                 for h in hosts])
                ids = dict(conn.execute(sa.select(services.c.host, services.c.id)
                                        .where(services.c.host.in_(hosts))).all())
                conn.execute(compute_nodes.insert(), [compute_node_row(h, ids[h], now=now)
                                                      for h in hosts])
    finally:
        engine.dispose()
