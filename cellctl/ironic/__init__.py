"""Ironic as Nova 34's driver sees it, shared by the ``ironic`` commands.

- ``nodes``: the nodes, read from Ironic's API; ``config``: the ``[ironic]``
  settings of nova.conf;
- ``ownership``: which compute service manages which node from each service's
  own point of view (``ironic owners``);
- ``ring``: the ironic compute services of a cell and the hash ring over them
  (``ironic ring``, ``ironic move --rebalance``).

No command module is imported here.
"""
