"""cellctl: manage the control plane of a cells v2 compute cloud.

The command line is one client of this package; an upgrade script can be
another::

    import cellctl

    settings = cellctl.resolve(config_files=["/etc/nova/nova.conf"])
    with cellctl.Databases(settings) as dbs:
        for cell in cellctl.list_cells(dbs).table.rows:
            result = cellctl.map_instances(dbs, cell_uuid=cell["uuid"])
            print(cell["name"], result.code, result.data)

Every operation takes a ``Databases`` and keyword arguments named like the
command's options, and returns a ``Result``: ``code`` (the command's exit
code), ``messages`` (what the command would print on stderr), ``table``
and/or ``data`` (what it would print on stdout). Operations never print,
exit or prompt. Messages name arguments as the caller passes them:
``transport_url=`` from Python, ``--transport-url`` from the command line.
What scripts read is typed: ``list_cells`` returns ``Result[None, CellRow]``,
``map_instances`` ``Result[MapInstancesData, None]`` and so on (``cellctl.results``
declares them, and they are exported here).

Names are imported on first use, so ``import cellctl`` stays as cheap as the
command line's ``--help``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "resolve": "cellctl.settings",
    "Settings": "cellctl.settings",
    "Setting": "cellctl.settings",
    "Databases": "cellctl.db",
    "Result": "cellctl.result",
    "Table": "cellctl.result",
    "Column": "cellctl.result",
    "Message": "cellctl.result",
    "Progress": "cellctl.progress",
    "NO_PROGRESS": "cellctl.progress",
    "CellctlError": "cellctl.errors",
    "ConfigError": "cellctl.errors",
    "DatabaseError": "cellctl.errors",
    "InvalidURL": "cellctl.errors",
    "SchemaMissing": "cellctl.errors",
    "api_db_sync": "cellctl.ops.schema",
    "api_db_version": "cellctl.ops.schema",
    "db_sync": "cellctl.ops.schema",
    "db_version": "cellctl.ops.schema",
    "map_cell0": "cellctl.ops.cells",
    "create_cell": "cellctl.ops.cells",
    "list_cells": "cellctl.ops.cells",
    "update_cell": "cellctl.ops.cells",
    "delete_cell": "cellctl.ops.cells",
    "discover_hosts": "cellctl.ops.hosts",
    "list_hosts": "cellctl.ops.hosts",
    "delete_host": "cellctl.ops.hosts",
    "map_cell_and_hosts": "cellctl.ops.hosts",
    "map_instances": "cellctl.ops.map_instances",
    "verify_instance": "cellctl.ops.verify_instance",
    "simple_cell_setup": "cellctl.ops.setup",
    "status": "cellctl.ops.status",
    "list_services": "cellctl.ops.services",
    "register_service": "cellctl.ops.services",
    "heartbeat": "cellctl.ops.services",
    "show_config": "cellctl.ops.config",
    "ironic_ring": "cellctl.ops.ironic_ring",
    "ironic_move": "cellctl.ops.ironic_move",
    "audit": "cellctl.ops.audit",
    "add_instances": "cellctl.ops.dev",
    "ensure_cell": "cellctl.ops.cell_ensure",
    "check_cells": "cellctl.ops.cell_check",
    "ironic_owners": "cellctl.ops.ironic_owners",
    # the types of what scripts read (Result.data, Result.table.rows)
    "CellRow": "cellctl.results",
    "MapCell0Data": "cellctl.results",
    "CreateCellData": "cellctl.results",
    "UpdateCellData": "cellctl.results",
    "CellConflict": "cellctl.results",
    "CellEnsureData": "cellctl.results",
    "CellCheck": "cellctl.results",
    "CellCheckData": "cellctl.results",
    "HostRow": "cellctl.results",
    "DiscoveredCell": "cellctl.results",
    "WaitedHost": "cellctl.results",
    "DiscoverHostsData": "cellctl.results",
    "MapInstancesData": "cellctl.results",
    "VerifyInstanceData": "cellctl.results",
    "ServiceRow": "cellctl.results",
    "StatusCheck": "cellctl.results",
    "ConnectivityProbe": "cellctl.results",
    "StatusData": "cellctl.results",
    "ConfigRow": "cellctl.results",
    "IronicNodeRow": "cellctl.results",
    "IronicRingServiceRow": "cellctl.results",
    "IronicRingRow": "cellctl.results",
    "IronicOwnerNodeRow": "cellctl.results",
    "IronicOwnerServiceRow": "cellctl.results",
    "IronicOwnersRow": "cellctl.results",
    "SchemaStateData": "cellctl.results",
    "SchemaVersionData": "cellctl.results",
    "SyncedDatabase": "cellctl.results",
    "SchemaSyncData": "cellctl.results",
    "MapCellAndHostsData": "cellctl.results",
    "SimpleCellSetupData": "cellctl.results",
    "RegisterServiceData": "cellctl.results",
    "HeartbeatData": "cellctl.results",
    "AddInstancesData": "cellctl.results",
    "CellService": "cellctl.results",
    "CellComputeNode": "cellctl.results",
    "CellContentsData": "cellctl.results",
    "DeleteHostData": "cellctl.results",
    "DeleteCellData": "cellctl.results",
    "IronicMoveCheck": "cellctl.results",
    "IronicMoveRow": "cellctl.results",
    "AuditFinding": "cellctl.results",
    "AuditData": "cellctl.results",
}

__all__ = [
    "NO_PROGRESS",
    "AddInstancesData",
    "AuditData",
    "AuditFinding",
    "CellCheck",
    "CellCheckData",
    "CellComputeNode",
    "CellConflict",
    "CellContentsData",
    "CellEnsureData",
    "CellRow",
    "CellService",
    "CellctlError",
    "Column",
    "ConfigError",
    "ConfigRow",
    "ConnectivityProbe",
    "CreateCellData",
    "DatabaseError",
    "Databases",
    "DeleteCellData",
    "DeleteHostData",
    "DiscoverHostsData",
    "DiscoveredCell",
    "HeartbeatData",
    "HostRow",
    "InvalidURL",
    "IronicMoveCheck",
    "IronicMoveRow",
    "IronicNodeRow",
    "IronicOwnerNodeRow",
    "IronicOwnerServiceRow",
    "IronicOwnersRow",
    "IronicRingRow",
    "IronicRingServiceRow",
    "MapCell0Data",
    "MapCellAndHostsData",
    "MapInstancesData",
    "Message",
    "Progress",
    "RegisterServiceData",
    "Result",
    "SchemaMissing",
    "SchemaStateData",
    "SchemaSyncData",
    "SchemaVersionData",
    "ServiceRow",
    "Setting",
    "Settings",
    "SimpleCellSetupData",
    "StatusCheck",
    "StatusData",
    "SyncedDatabase",
    "Table",
    "UpdateCellData",
    "VerifyInstanceData",
    "WaitedHost",
    "__version__",
    "add_instances",
    "api_db_sync",
    "api_db_version",
    "audit",
    "check_cells",
    "create_cell",
    "db_sync",
    "db_version",
    "delete_cell",
    "delete_host",
    "discover_hosts",
    "ensure_cell",
    "heartbeat",
    "ironic_move",
    "ironic_owners",
    "ironic_ring",
    "list_cells",
    "list_hosts",
    "list_services",
    "map_cell0",
    "map_cell_and_hosts",
    "map_instances",
    "register_service",
    "resolve",
    "show_config",
    "simple_cell_setup",
    "status",
    "update_cell",
    "verify_instance",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cellctl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from cellctl.db import Databases
    from cellctl.errors import CellctlError, ConfigError, DatabaseError, InvalidURL, SchemaMissing
    from cellctl.ops.audit import audit
    from cellctl.ops.cell_check import check_cells
    from cellctl.ops.cell_ensure import ensure_cell
    from cellctl.ops.cells import create_cell, delete_cell, list_cells, map_cell0, update_cell
    from cellctl.ops.config import show_config
    from cellctl.ops.dev import add_instances
    from cellctl.ops.hosts import delete_host, discover_hosts, list_hosts, map_cell_and_hosts
    from cellctl.ops.ironic_move import ironic_move
    from cellctl.ops.ironic_owners import ironic_owners
    from cellctl.ops.ironic_ring import ironic_ring
    from cellctl.ops.map_instances import map_instances
    from cellctl.ops.schema import api_db_sync, api_db_version, db_sync, db_version
    from cellctl.ops.services import heartbeat, list_services, register_service
    from cellctl.ops.setup import simple_cell_setup
    from cellctl.ops.status import status
    from cellctl.ops.verify_instance import verify_instance
    from cellctl.progress import NO_PROGRESS, Progress
    from cellctl.result import Column, Message, Result, Table
    from cellctl.results import (
        AddInstancesData,
        AuditData,
        AuditFinding,
        CellCheck,
        CellCheckData,
        CellComputeNode,
        CellConflict,
        CellContentsData,
        CellEnsureData,
        CellRow,
        CellService,
        ConfigRow,
        ConnectivityProbe,
        CreateCellData,
        DeleteCellData,
        DeleteHostData,
        DiscoveredCell,
        DiscoverHostsData,
        HeartbeatData,
        HostRow,
        IronicMoveCheck,
        IronicMoveRow,
        IronicNodeRow,
        IronicOwnerNodeRow,
        IronicOwnerServiceRow,
        IronicOwnersRow,
        IronicRingRow,
        IronicRingServiceRow,
        MapCell0Data,
        MapCellAndHostsData,
        MapInstancesData,
        RegisterServiceData,
        SchemaStateData,
        SchemaSyncData,
        SchemaVersionData,
        ServiceRow,
        SimpleCellSetupData,
        StatusCheck,
        StatusData,
        SyncedDatabase,
        UpdateCellData,
        VerifyInstanceData,
        WaitedHost,
    )
    from cellctl.settings import Setting, Settings, resolve
