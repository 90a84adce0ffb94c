"""Shared parts about the API database's mappings of hosts and instances to cells.

- ``lookup``: which instance UUIDs are mapped, and where: the one engine that
  ``audit`` and ``status`` ask (UUIDs folded once, ``lookup.fold``).
- ``hosts``: host mappings written in Galera-safe batches (``discover_hosts``,
  ``map_cell_and_hosts``, the audit's repair).
- ``local_cell``: mapping ``[database]`` as a cell with its hosts
  (``map_cell_and_hosts``, ``simple_cell_setup``).
- ``instances``: what an instance mapping is made of, inserted safely.
- ``cell_instances``: mapping every instance of a cell (``map_instances``,
  ``simple_cell_setup``).
- ``marker``: ``map_instances``' resume marker, as nova-manage keeps it.
- ``unmapped``: which hosts and instances of a cell have no mapping (``status``).
"""
