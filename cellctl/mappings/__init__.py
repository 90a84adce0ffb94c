"""Shared parts about the API database's mappings of hosts and instances to cells.

- ``hosts``: host mappings written in Galera-safe batches (``discover_hosts``).
- ``instances``: what an instance mapping is made of, inserted safely.
- ``marker``: ``map_instances``' resume marker, as nova-manage keeps it.
- ``unmapped``: which instances of a cell have no mapping.
"""
