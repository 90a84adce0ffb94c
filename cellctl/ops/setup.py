"""simple_cell_setup: a one-cell cloud in one command, composed of the cores of
``map_cell0``, ``map_cell_and_hosts`` and ``map_instances`` (cellctl.cells.cell0,
cellctl.mappings.local_cell and cellctl.mappings.cell_instances).

Map cell0 and create its schema, map ``[database]`` as a cell with its
compute hosts, then map that cell's instances, with nova-manage's messages
and exit codes. Every step is idempotent, so a second run reports that all
is set up and changes nothing.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from cellctl import migrate
from cellctl.cells.cell0 import beside_nova, map_cell0
from cellctl.cells.refs import CELL0_UUID, find_cell
from cellctl.cells.urls import BAD_TRANSPORT_URL, resolve_transport_url
from cellctl.db import Databases
from cellctl.errors import CellctlError, nova_error_text
from cellctl.mappings.cell_instances import map_cell_instances
from cellctl.mappings.local_cell import map_cell_and_hosts
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Result
from cellctl.results import SimpleCellSetupData


class SimpleCellSetupExit(IntEnum):
    """``simple_cell_setup``'s exit codes."""

    OK = 0  # done, or already done
    NO_HOSTS = 1  # no compute hosts to map
    BAD_TRANSPORT_URL = BAD_TRANSPORT_URL  # missing or invalid: nothing is written


def simple_cell_setup(dbs: Databases, *, transport_url: str | None = None,
                      progress: Progress = NO_PROGRESS
                      ) -> Result[SimpleCellSetupData, None]:
    """Exit 0 done (or already done), 1 no compute hosts, or transport URL missing or
    invalid (then nothing is written)."""
    result: Result[SimpleCellSetupData, None] = Result()
    transport = resolve_transport_url(dbs, transport_url, result)
    if transport is None:
        return result
    data: SimpleCellSetupData = {}
    result.data = data

    cell0 = _absorb(result, map_cell0(dbs))
    if result.code:
        return result
    data["cell0_created"] = bool(cell0.get("created"))
    data["cell0_schema"] = _sync_cell0(dbs, result)

    cell = _absorb(result, map_cell_and_hosts(dbs, transport_url=transport, progress=progress))
    data["cell_uuid"] = cell.get("cell_uuid")
    data["cell_created"] = cell.get("cell_created")
    data["hosts_mapped"] = cell.get("hosts_mapped")
    if not cell.get("compute_nodes"):
        result.code = SimpleCellSetupExit.NO_HOSTS  # "No hosts found to map to cell, exiting."
        return result

    # nova-manage ignores map_instances' exit code here; mapping everything
    # can only end in 0, and an error raises.
    instances = _absorb(result, map_cell_instances(dbs, cell_uuid=str(cell["cell_uuid"]),
                                                   progress=progress))
    data["instances_mapped"] = instances.get("mapped")
    return result


def _absorb(result: Result, step: Result) -> dict[str, Any]:
    """Take a step's messages (and failure code) into ``result``; return the step's data."""
    result.messages.extend(step.messages)
    result.unreachable_cells.extend(step.unreachable_cells)
    if step.code and not result.code:
        result.code = step.code
    return dict(step.data or {})


def _sync_cell0(dbs: Databases, result: Result) -> str | None:
    """Bring cell0's schema to head; a failure is reported and setup goes on, as in Nova."""
    with dbs.api.connect() as conn:
        cell0 = find_cell(conn, CELL0_UUID)
    url = dbs.expand_database_url(cell0.database_connection) if cell0 is not None else None
    try:
        if not url:
            raise CellctlError("cell0 has no database connection")
        # Beside a Nova [database], an empty cell0 is left for nova-manage db sync.
        outcome = migrate.sync(dbs.engine_for_sync(url, "cell0 database"), "cell",
                               nova_deployment=beside_nova(dbs))
    except CellctlError as exc:
        # stdout, as nova-manage prints it: the driver's (SQLAlchemy's) text of the error
        result.info(f"Unable to sync cell0 schema: {nova_error_text(exc)}")
        return None
    return outcome.after.revision
