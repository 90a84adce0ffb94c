"""How every writer writes: one transaction, one lock name, one retry rule.

- ``transactions``: serialised check-then-write (``write_transaction``) and
  duplicate-safe inserts (``insert_ignoring_duplicates``).
- ``galera``: batches redone when they lose to another writer, and sized to
  fit the server's write-set and packet limits.
- ``locks``: the advisory lock names writers share.
- ``mysql_insert``: PyMySQL's fast multi-row ``INSERT IGNORE``.
"""
