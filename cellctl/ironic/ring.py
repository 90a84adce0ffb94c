"""The members of a cell's Ironic hash ring, as Nova's Ironic driver picks them.

Shared by ``ironic ring`` (who owns which node) and ``ironic move
--rebalance`` (where a retired service's nodes go). The ring members of a
cell are Nova's (``service_get_all_computes_by_hv_type`` then
``service_is_up``): ``nova-compute`` services that are not deleted, not
disabled, up by the configured service group driver and not forced down,
whose host has an ironic ``compute_nodes`` row (deleted or not: Nova's join
does not filter ``compute_nodes.deleted``), host names lower-cased. The ring
itself is ``cellctl.hashring``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import exists, func, or_, select

from cellctl import liveness
from cellctl.clock import utcnow
from cellctl.liveness import BackendUnreachable, ServiceRecord, judge
from cellctl.tables.cell import COMPUTE_BINARY, IRONIC
from cellctl.tables.cell import compute_nodes as cn
from cellctl.tables.cell import services as sv

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.engine import Engine

    from cellctl.db import Databases
    from cellctl.result import Result


@dataclass(frozen=True)
class IronicService:
    """A live nova-compute service of a cell that matters to its ring."""

    record: ServiceRecord
    has_ironic_node: bool  # a compute_nodes row with hypervisor_type 'ironic' (deleted or not)
    id: int | None = None  # services.id

    @property
    def candidate(self) -> bool:
        """A ring member whenever it is up."""
        return self.has_ironic_node and not self.record.disabled


def read_services(engine: Engine, joining: Sequence[str] = ()) -> list[IronicService]:
    """The cell's live nova-compute services that have an Ironic node (deleted or not,
    as Nova's join), and those of the ``joining`` hosts (compared lower-cased)."""
    ironic_node = exists().where(cn.c.host == sv.c.host, cn.c.hypervisor_type == IRONIC)
    wanted: ColumnElement[bool] = ironic_node
    if joining:
        wanted = or_(ironic_node, func.lower(sv.c.host).in_(sorted({h.lower() for h in joining})))
    query = (select(sv.c.id, *ServiceRecord.columns(sv), ironic_node.label("has_ironic_node"))
             .where(sv.c.deleted == 0, sv.c.binary == COMPUTE_BINARY, wanted)
             .order_by(sv.c.host))
    with engine.connect() as conn:
        return [IronicService(ServiceRecord.of(r), bool(r.has_ironic_node), r.id)
                for r in conn.execute(query) if r.host is not None]


def judge_services(dbs: Databases, services: dict[str, list[IronicService]], result: Result
                   ) -> dict[str, list[bool | None]]:
    """Each service's liveness by the configured service group driver, in one bulk ask
    for every cell (cell UUID -> verdicts in the order of ``services[cell]``).

    A backend that cannot be reached leaves liveness unknown (None), never guessed,
    and says so in a warning.
    """
    records = [s.record for listed in services.values() for s in listed]
    verdicts: list[bool | None] = []
    if records:
        warning = None
        try:
            # Looked up on the module at each call: a test may replace the factory.
            driver = liveness.service_group(dbs.settings)
        except BackendUnreachable as exc:
            verdicts, warning = [None] * len(records), f"{exc}: liveness unknown"
        else:
            try:
                verdicts, warning = judge(driver, records, utcnow())
            finally:
                driver.close()
        if warning is not None:
            result.warn(f"{warning} (so are the owners of nodes without an instance)")
    split: dict[str, list[bool | None]] = {}
    position = 0
    for uuid, listed in services.items():
        split[uuid] = verdicts[position:position + len(listed)]
        position += len(listed)
    return split


def ring_members(services: Sequence[IronicService],
                 verdicts: Sequence[bool | None]) -> set[str] | None:
    """The lower-cased hosts of a cell's ring; None when a candidate's liveness is unknown."""
    candidates = [(s, up) for s, up in zip(services, verdicts, strict=True) if s.candidate]
    if any(up is None for _, up in candidates):
        return None
    return {s.record.host.lower() for s, up in candidates if up}
