"""Commands: one module (or package) per command family, each a plain function
over ``Databases`` returning a ``Result``.

The library has two floors under the CLI:

- **Commands** (here, ``cellctl.ops``): ``cells``, ``hosts``, ``map_instances``,
  ``services``, ``status``, ``schema``, ``setup``, ``config``, ``dev``,
  ``verify_instance``, ``ironic_ring``, ``audit``. Each returns data and an
  outcome, never prints and never exits; ``cellctl.cli`` renders it. No command
  imports another: what two commands share lives one floor down.
- **Shared parts** (beside ``ops``): ``cellctl.cells`` (naming, expanding,
  reaching and querying cells), ``cellctl.mappings`` (host and instance
  mappings), ``cellctl.writes`` (transactions, locks, Galera-safe batches),
  ``cellctl.liveness`` (the service group), ``cellctl.tables`` (schemas and
  row builders), and the small modules at the package's top (``db``,
  ``settings``, ``urls``, ``paging``, ``result``, ``errors``).
"""
