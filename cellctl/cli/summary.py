"""One line on what a mapping command did, for a person watching a terminal.

nova-manage's stdout for ``map_cell0``, ``map_instances``, ``discover_hosts`` and
``simple_cell_setup`` is what scripts parse, and it says little (nothing, often).
This line goes to stderr, in the table format, whether a person or a program reads
it: stdout stays exactly nova-manage's (what deployment tools parse), and stderr is
where nova-manage's own warnings go. ``--format json``/``csv`` carry the same
figures in their data instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cellctl.result import plural


def _n(count: Any, noun: str) -> str:
    """``plural`` of a count from the result's data (a list counts its items, None is 0)."""
    return plural(len(count) if isinstance(count, list | tuple) else int(count or 0), noun)


def summary_line(command: str, data: Mapping[str, Any] | None) -> str | None:
    if not data:
        return None
    if command == "map_cell0":
        return "cell0 mapped" if data.get("created") else "cell0 was already mapped"
    if command == "discover_hosts":
        cells = data.get("cells") or []
        return (f"discover_hosts: {_n(data.get('hosts_mapped'), 'new host mapping')} "
                f"in {_n(len(cells), 'cell')} read")
    if command == "map_instances":
        line = (f"map_instances: {_n(data.get('mapped'), 'instance')} mapped, "
                f"{data.get('already_mapped') or 0} already mapped, in cell "
                f"{data.get('cell_uuid')}")
        return line + ("; more to do: run it again" if data.get("more") else "")
    if command == "simple_cell_setup":
        cell0 = "cell0 mapped" if data.get("cell0_created") else "cell0 already mapped"
        if "cell_uuid" not in data:
            return f"simple_cell_setup: {cell0}"
        cell = "mapped" if data.get("cell_created") else "already mapped"
        return (f"simple_cell_setup: {cell0}; cell {data.get('cell_uuid')} {cell} with "
                f"{_n(data.get('hosts_mapped'), 'new host mapping')} and "
                f"{_n(data.get('instances_mapped'), 'new instance mapping')}")
    return None
