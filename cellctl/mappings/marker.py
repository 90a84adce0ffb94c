"""Nova's resume marker for map_instances, read and written exactly as nova-manage does.

The marker is a pseudo row of ``instance_mappings``: ``project_id`` and
``user_id`` are ``INSTANCE_MIGRATION_MARKER``, ``cell_id`` is NULL, and
``instance_uuid`` is the last instance processed with its dashes turned into
spaces (the real UUID is taken by the instance's own mapping). Keeping Nova's
format lets a run of cellctl resume a run of nova-manage and the reverse.
There is one marker for the whole API database, not one per cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cellctl.clock import utcnow
from cellctl.writes.transactions import insert_ignoring_duplicates

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

MARKER_PROJECT_ID = "INSTANCE_MIGRATION_MARKER"


def read_marker(conn: Connection) -> str | None:
    """The instance UUID the last unfinished run stopped after, or None."""
    from sqlalchemy import select

    from cellctl.tables.api import instance_mappings as im

    # nova-manage reads the first marker row; there is normally only one.
    stored = conn.execute(
        select(im.c.instance_uuid)
        .where(im.c.project_id == MARKER_PROJECT_ID)
        .order_by(im.c.id)
        .limit(1)
    ).scalar()
    return stored.replace(" ", "-") if stored else None


def move_marker(conn: Connection, last_uuid: str | None) -> None:
    """Point the marker at ``last_uuid``, or remove it when None.

    Called in the transaction that commits the mappings the marker stands
    for, so the marker never gets ahead of the work (nor behind it).
    """
    from sqlalchemy import delete

    from cellctl.tables.api import instance_mappings as im

    conn.execute(delete(im).where(im.c.project_id == MARKER_PROJECT_ID))
    if last_uuid is not None:
        insert_ignoring_duplicates(conn, im, [{
            "instance_uuid": last_uuid.replace("-", " "),
            "cell_id": None,
            "project_id": MARKER_PROJECT_ID,
            "user_id": MARKER_PROJECT_ID,
            "queued_for_delete": False,
            "created_at": utcnow(),
        }])
