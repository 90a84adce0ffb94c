"""map_instances: give every instance of a cell an instance mapping, oldest first.

The work is cellctl.mappings.cell_instances' (``simple_cell_setup`` runs it
too): one ordered, streaming read of the cell's instances, mapped in large
batches, each committed with the move of Nova's resume marker, so a run
killed at any moment resumes exactly where its last commit left off.
"""

from __future__ import annotations

from cellctl.db import Databases
from cellctl.mappings.cell_instances import MapInstancesExit as MapInstancesExit
from cellctl.mappings.cell_instances import map_cell_instances
from cellctl.progress import NO_PROGRESS, Progress
from cellctl.result import Result
from cellctl.results import MapInstancesData


def map_instances(dbs: Databases, *, cell_uuid: str, max_count: int | None = None,
                  reset: bool = False, progress: Progress = NO_PROGRESS
                  ) -> Result[MapInstancesData, None]:
    """Map the cell's unmapped instances: all of them, or at most ``max_count`` per run.

    Exit 0 when every instance has been looked at, 1 while more remain after
    a ``max_count`` run (the marker then says where the next run starts), 127
    for a bad ``max_count``, 255 for an unknown cell (nova-manage's crash).
    """
    return map_cell_instances(dbs, cell_uuid=cell_uuid, max_count=max_count, reset=reset,
                              progress=progress)
