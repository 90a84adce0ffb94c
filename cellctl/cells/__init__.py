"""Shared parts about cells: naming one, expanding its URLs, reaching it, querying it.

- ``refs``: a cell as the API database records it (``CellRef``), found by UUID.
- ``urls``: a cell's stored URL templates expanded from the settings.
- ``probes``: whether a cell's database answers, in bounded time.
- ``reach``: reading many cells in parallel, a cell that does not answer set
  aside as *unreachable* (the one dead-cell mechanism every command uses).
- ``queries``: queries over a cell database that several commands run.
"""
