"""verify_instance: where an instance lives, with nova-manage's messages and exit codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cellctl.cells.refs import cell_database
from cellctl.db import Databases
from cellctl.result import Result
from cellctl.results import VerifyInstanceData

if TYPE_CHECKING:
    from sqlalchemy.engine import Row

MAPPED, NOT_MAPPED, NO_CELL, DELETED, ARCHIVED = 0, 1, 2, 3, 4
_STATES = {MAPPED: "mapped", NOT_MAPPED: "not_mapped", NO_CELL: "no_cell",
           DELETED: "deleted", ARCHIVED: "archived"}


def verify_instance(dbs: Databases, *, instance_uuid: str, quiet: bool = False
                    ) -> Result[VerifyInstanceData, None]:
    """Exit 0 mapped, 1 not mapped, 2 mapping without a cell, 3 deleted instance still
    mapped, 4 archived instance still mapped. ``quiet`` keeps only the exit code."""
    from sqlalchemy import select

    from cellctl.tables.api import cell_mappings as cm
    from cellctl.tables.api import instance_mappings as im
    from cellctl.tables.cell import instances

    with dbs.api.connect() as conn:
        mapping = conn.execute(
            select(im.c.cell_id, cm.c.uuid, cm.c.name, cm.c.database_connection)
            .select_from(im.outerjoin(cm, im.c.cell_id == cm.c.id))
            .where(im.c.instance_uuid == instance_uuid)
        ).first()
    if mapping is None:
        lines = [f"Instance {instance_uuid} is not mapped to a cell (upgrade is incomplete) "
                 "or instance does not exist"]
        return _answer(instance_uuid, NOT_MAPPED, lines, None, quiet)
    if mapping.uuid is None:
        return _answer(instance_uuid, NO_CELL,
                       [f"Instance {instance_uuid} is not mapped to a cell"], None, quiet)

    with cell_database(dbs, mapping).connect() as conn:
        deleted = conn.execute(
            select(instances.c.deleted).where(instances.c.uuid == instance_uuid)
        ).first()
    if deleted is None:
        lines = [f"The instance with uuid {instance_uuid} has been archived.",
                 "However its instance_mapping remains."]
        return _answer(instance_uuid, ARCHIVED, lines, mapping, quiet)
    if deleted.deleted:
        lines = [f"The instance with uuid {instance_uuid} has been deleted.",
                 "Execute `nova-manage db archive_deleted_rows` command to archive this "
                 "deleted instance and remove its instance_mapping."]
        return _answer(instance_uuid, DELETED, lines, mapping, quiet)
    lines = [f"Instance {instance_uuid} is in cell: {mapping.name} ({mapping.uuid})"]
    return _answer(instance_uuid, MAPPED, lines, mapping, quiet)


def _answer(instance_uuid: str, code: int, lines: list[str], mapping: Row | None,
            quiet: bool) -> Result[VerifyInstanceData, None]:
    result: Result[VerifyInstanceData, None] = Result(code=code)
    if quiet:
        return result
    for line in lines:
        result.info(line)  # answers, not errors: nova-manage prints them on stdout
    result.data = {
        "uuid": instance_uuid,
        "state": _STATES[code],
        "cell_uuid": mapping.uuid if mapping is not None else None,
        "cell_name": mapping.name if mapping is not None else None,
    }
    return result
