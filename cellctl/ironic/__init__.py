"""Ironic: what the commands about bare-metal nodes share (``ironic ring``, ``ironic move``)."""
