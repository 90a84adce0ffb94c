"""The names of the advisory locks writers take (``write_transaction(engine, lock=...)``).

One place for them and their holders, so that two commands that must take
turns name the same lock without importing each other:

- CELL_LOCK, writers of ``cell_mappings``: ``create_cell``, ``update_cell``,
  ``delete_cell`` (cellctl.ops.cells), ``cell ensure`` (cellctl.ops.cell_ensure),
  ``map_cell0`` (cellctl.cells.cell0), ``map_cell_and_hosts`` and
  ``simple_cell_setup`` adding the local cell (cellctl.mappings.local_cell).
- HOST_MAPPING_LOCK, writers of ``host_mappings``: ``discover_hosts`` and
  ``map_cell_and_hosts`` (cellctl.mappings.hosts), the audit's repair
  (cellctl.ops.audit.hosts).
- MARKER_LOCK, writers of ``instance_mappings`` and the marker: ``map_instances``
  (cellctl.mappings.cell_instances), the audit's repair (cellctl.ops.audit.checks).
- IRONIC_NODE_LOCK: ``ironic move`` (cellctl.ops.ironic_move), on the cell database.
- ``schema_lock(kind)``: ``api_db sync`` and ``db sync`` (cellctl.migrate), on the
  database they migrate, so two concurrent syncs run one after the other instead
  of both creating the same tables.
"""

from typing import Literal

CELL_LOCK = "cell_mappings"
HOST_MAPPING_LOCK = "host_mappings"
MARKER_LOCK = "instance_mappings.marker"
IRONIC_NODE_LOCK = "compute_nodes.ironic"


def schema_lock(kind: Literal["api", "cell"]) -> str:
    """The lock held while the schema of an API (``api``) or cell database is migrated."""
    return f"{kind}-schema"
