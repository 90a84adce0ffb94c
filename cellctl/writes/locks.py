"""The names of the advisory locks writers take (``write_transaction(engine, lock=...)``).

One place for them, so that two commands that must take turns name the same
lock without importing each other: ``create_cell``, ``update_cell``,
``delete_cell`` and ``delete_host`` serialise on CELL_LOCK; host-mapping
writers (``discover_hosts``, the audit's repair) on HOST_MAPPING_LOCK;
instance-mapping writers (``map_instances``, the audit's repair) on
MARKER_LOCK; ``ironic move`` on IRONIC_NODE_LOCK.
"""

CELL_LOCK = "cell_mappings"
HOST_MAPPING_LOCK = "host_mappings"
MARKER_LOCK = "instance_mappings.marker"
IRONIC_NODE_LOCK = "compute_nodes.ironic"
