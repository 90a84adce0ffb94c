"""Shared parts about cells: naming one, expanding its URLs, reaching it, querying it.

- ``refs``: a cell as the API database records it (``CellRef``), found by UUID
  or name, and opened (``cell_database``).
- ``urls``: the URLs a new cell gets (given, else from the configuration);
  a stored template is expanded by ``Databases`` once per command.
- ``probes``: whether a cell's database or queue answers, in bounded time.
- ``reach``: reading many cells in parallel, a cell that does not answer set
  aside as *unreachable* (the one dead-cell mechanism every command uses).
- ``queries``: queries over a cell database that several commands run.
- ``cell0``: mapping cell0 (``map_cell0``, ``simple_cell_setup``).
- ``sharing``: whether two cells use one database or one queue.
- ``usage``: what still uses a host or a cell (refused deletes).
- ``waiting``: waiting for compute hosts to register (``discover_hosts --wait-for``).
"""
