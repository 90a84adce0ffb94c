"""Commands: one module (or package) per command family, each a plain function
over ``Databases`` returning a ``Result``.

The library has two floors under the CLI:

- **Commands** (here, ``cellctl.ops``): ``cells``, ``hosts``, ``map_instances``,
  ``services``, ``status``, ``schema``, ``setup``, ``config``, ``dev``,
  ``verify_instance``, ``cell_ensure``, ``cell_check``, ``ironic_ring``,
  ``ironic_move``, ``ironic_owners``, ``audit`` (a package). Each returns data
  and an outcome, never prints and never exits; ``cellctl.cli`` renders it
  (``cellctl.cli.nova_manage``, the nova-manage face, answers ``cell_v2``
  and the schema commands through the same operations). No command imports
  another: what two commands share lives one floor down (tests/test_lint.py
  checks it, and that no import cycle exists).
- **Shared parts** (beside ``ops``): ``cellctl.cells`` (naming, expanding,
  reaching and querying cells), ``cellctl.mappings`` (host and instance
  mappings, and the "is it mapped" engine), ``cellctl.writes`` (transactions,
  locks, Galera-safe batches), ``cellctl.liveness`` (the service group),
  ``cellctl.ironic`` (Ironic's nodes and hash ring), ``cellctl.tables`` (schemas and
  row builders), and the small modules at the package's top (``db``,
  ``settings``, ``urls``, ``paging``, ``result``, ``errors``).
"""
