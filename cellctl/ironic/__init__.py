"""Ironic as Nova 34's driver sees it: the nodes (``nodes``), the ``[ironic]``
settings of nova.conf (``config``) and which compute service manages which node
from each service's own point of view (``ownership``).

Shared by the commands that need it (``ironic owners``, and ``ironic move``
later); no command module is imported here.
"""
