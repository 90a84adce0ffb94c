"""What scripts read: the types of the data and table rows the operations return.

A command's JSON output is its ``Result.data`` (with ``exit_code`` added), else
its table's rows; a library caller gets the same values, typed here. Each
operation names its types in its signature, ``Result[Data, Row]``: ``Data`` for
``result.data``, ``Row`` for ``result.table.rows`` (``None`` where the command
has no data object). Keys a command adds only in some runs are ``NotRequired``.

tests/test_api.py checks every type against what the commands really return,
so a key added to the JSON and not here (or the other way round) fails there.
Annotations are evaluated (no ``from __future__ import annotations``), so that
``__required_keys__`` and ``__optional_keys__`` are right at run time; only
``typing`` and ``datetime`` are imported, so the module is cheap to load.
"""

import datetime
from typing import NotRequired, TypedDict

# --- cells ---------------------------------------------------------------------


class CellRow(TypedDict):
    """``list_cells``: one cell; URLs expanded from this host's settings."""

    name: str | None
    uuid: str
    transport_url: str | None
    database_connection: str | None
    disabled: bool


class MapCell0Data(TypedDict):
    """``map_cell0``: ``created`` False when cell0 was mapped already (absent on an error)."""

    uuid: str
    created: NotRequired[bool]


class CreateCellData(TypedDict):
    """``create_cell``."""

    uuid: str
    name: str | None
    disabled: bool


class UpdateCellData(TypedDict):
    """``update_cell``: the names of the fields written (empty: nothing changed)."""

    uuid: str
    changed: list[str]


class CellConflict(TypedDict):
    """The cell already using a database or queue that ``cell ensure`` was given."""

    uuid: str
    name: str | None
    kind: str  # "database" or "queue"


class CellEnsureData(TypedDict):
    """``cell ensure``: ``outcome`` is created, updated, unchanged or conflict; URLs masked."""

    outcome: str
    name: str
    uuid: str | None  # None: a conflict before the cell existed
    changed: NotRequired[list[str]]
    transport_url: NotRequired[str | None]
    database_connection: NotRequired[str | None]
    disabled: NotRequired[bool]
    conflict: NotRequired[CellConflict]


class CellCheck(TypedDict):
    """One finding of ``cell check``; ``result`` is success, warning or failure."""

    cell: str | None  # the cell's label; None: about the whole deployment
    cell_uuid: str | None
    check: str
    result: str
    details: str


class CellCheckData(TypedDict):
    """``cell check``."""

    checks: list[CellCheck]


# --- hosts and instances -----------------------------------------------------


class HostRow(TypedDict):
    """``list_hosts``; ``state`` with ``status=True`` only (up, down, disabled, unknown...)."""

    cell_name: str | None
    cell_uuid: str
    hostname: str
    state: NotRequired[str]


class DiscoveredCell(TypedDict):
    uuid: str
    name: str | None
    hosts_mapped: int


class WaitedHost(TypedDict):
    """A host ``discover_hosts`` waited for (found, registered or expected)."""

    host: str
    cell_uuid: str | None
    cell_name: str | None
    status: str
    mapped_to: str | None  # the UUID of the cell it is mapped to after discovery
    registered: bool


class DiscoverHostsData(TypedDict):
    """``discover_hosts``; the keys after ``cells`` come with ``wait_for``/``expect`` only."""

    hosts_mapped: int
    cells: list[DiscoveredCell]
    hosts: NotRequired[list[WaitedHost]]
    missing: NotRequired[list[str]]
    waited_seconds: NotRequired[float]
    found: NotRequired[int]
    timed_out: NotRequired[bool]


class MapInstancesData(TypedDict):
    """``map_instances``: ``more`` True when ``max_count`` stopped it before the end."""

    cell_uuid: str
    processed: int
    mapped: int
    already_mapped: int
    without_project: int
    more: bool
    marker: str | None


class VerifyInstanceData(TypedDict):
    """``verify_instance`` (none with ``quiet``)."""

    uuid: str
    state: str
    cell_uuid: str | None
    cell_name: str | None


# --- services and status -----------------------------------------------------


class ServiceRow(TypedDict):
    """``list_services``: ``state`` up, down or unknown as the service group judges it."""

    cell_name: str | None
    cell_uuid: str
    binary: str
    host: str
    status: str  # enabled or disabled
    state: str
    forced_down: bool
    last_seen_up: datetime.datetime | None
    disabled_reason: str | None


class StatusCheck(TypedDict):
    """One check of ``status``; ``result`` success, warning or failure (capitalised in
    the table's rows, as nova-status prints it)."""

    check: str
    result: str
    details: str


class ConnectivityProbe(TypedDict):
    """One probe of ``status --check-connectivity``; ``result`` success, failure, skipped."""

    cell_uuid: str
    cell_name: str | None
    target: str  # database or queue
    url: str | None  # masked
    result: str
    latency_ms: float | None
    error: str | None


class StatusData(TypedDict):
    checks: list[StatusCheck]
    unreachable_cells: list[str]
    connectivity: NotRequired[list[ConnectivityProbe]]


class ConfigRow(TypedDict):
    """``config``: a file read, a setting, or the service group's backend."""

    setting: str
    value: str | None  # secrets masked by the renderer unless asked for
    source: str


# --- audit ---------------------------------------------------------------------


class AuditFinding(TypedDict):
    """``audit``: one inconsistency; ``kind`` one of the audit's kinds, ``cell_uuid`` None
    for the kinds that have no cell."""

    kind: str
    cell_uuid: str | None
    cell_name: str | None
    subject: str
    detail: str
    fixable: bool


class AuditData(TypedDict):
    """``audit``: the listed findings (at most ``limit`` a kind); ``counts`` every finding
    by kind, ``fixed`` the ones repaired by kind (``fix``)."""

    findings: list[AuditFinding]
    counts: dict[str, int]
    fixed: dict[str, int]
    unreachable_cells: list[str]


# --- Ironic --------------------------------------------------------------------


class IronicNodeRow(TypedDict):
    """``ironic_ring``: a node; ``owner_after`` with ``without``/``joining`` only."""

    node: str
    cell_uuid: str
    cell_name: str | None
    reported_by: list[str]
    owner: str | None
    state: str
    instance_uuid: str | None
    owner_after: NotRequired[str | None]


class IronicRingServiceRow(TypedDict):
    """``ironic_ring(summary=True)``: a service of a ring, or a host that reports nodes."""

    host: str
    cell_uuid: str
    cell_name: str | None
    state: str
    nodes_reported: int
    nodes_owned: int
    nodes_owned_after: NotRequired[int]


class IronicOwnerNodeRow(TypedDict):
    """``ironic_owners``: a node as Ironic lists it and who manages it."""

    node: str
    conductor_group: str | None
    shard: str | None
    instance_uuid: str | None
    instance_host: str | None
    reported_by: list[str]
    managed_by: list[str]
    would_manage: list[str]
    flags: list[str]


class IronicOwnerServiceRow(TypedDict):
    """``ironic_owners(services=True)``: an Ironic compute service and its settings."""

    host: str
    cell_uuid: str | None
    cell_name: str | None
    state: str
    conductor_group: str | None
    shard: str | None
    peer_list: list[str]
    nodes_listed: int | None  # None: unknown
    nodes_managed: int | None
    problems: list[str]
    source: str


class IronicMoveCheck(TypedDict):
    """A check ``ironic_move`` made of a node's move (``check`` names it)."""

    check: str
    passed: bool
    detail: str


class IronicMoveRow(TypedDict):
    """``ironic_move``: a node's planned (or made) move; ``status`` ready, refused, moved,
    not moved or already moved; ``failed_checks`` the names of the checks that failed."""

    node: str
    cell_uuid: str | None  # None: no cell has the node
    cell_name: str | None
    source: str
    destination: str | None
    instance_uuid: str | None
    status: str
    checks: list[IronicMoveCheck]
    failed_checks: list[str]


IronicRingRow = IronicNodeRow | IronicRingServiceRow  # ironic_ring: nodes, or the summary
IronicOwnersRow = IronicOwnerNodeRow | IronicOwnerServiceRow  # ironic_owners: nodes, or services


# --- schemas, setup, test data -------------------------------------------------


class SchemaStateData(TypedDict):
    """A database's schema: ``managed_by`` cellctl, nova or None (no schema)."""

    schema: str  # api or cell
    managed_by: str | None
    revision: str | None
    head: str
    current: bool


class SchemaVersionData(TypedDict):
    """``api_db_version``, ``db_version``: ``managed_by`` cellctl, nova or None (no schema)."""

    database: str
    schema: str  # api or cell
    managed_by: str | None
    revision: str | None
    head: str
    current: bool


class SyncedDatabase(TypedDict):
    """A database ``api_db_sync``/``db_sync`` brought to the revision asked for; URL masked."""

    database: str
    url: str | None
    schema: str
    managed_by: str | None
    revision: str | None
    head: str
    current: bool


class SchemaSyncData(TypedDict):
    """``api_db_sync``, ``db_sync``."""

    databases: list[SyncedDatabase]


class MapCellAndHostsData(TypedDict):
    """``map_cell_and_hosts``: ``cell_uuid`` None when there is no host; ``compute_nodes``
    the live nodes read, ``hosts_mapped`` the hosts this run mapped."""

    cell_uuid: str | None
    cell_created: bool
    compute_nodes: int
    hosts_mapped: list[str]


class SimpleCellSetupData(TypedDict):
    """``simple_cell_setup``: the keys come as its steps run (none past a failed step)."""

    cell0_created: NotRequired[bool]
    cell0_schema: NotRequired[str | None]  # cell0's revision; None: it could not be synced
    cell_uuid: NotRequired[str | None]
    cell_created: NotRequired[bool | None]
    hosts_mapped: NotRequired[list[str] | None]  # the hosts this run mapped
    instances_mapped: NotRequired[int | None]


class RegisterServiceData(TypedDict):
    """``register_service``; the ``ironic_`` keys with ``hypervisor_type='ironic'`` only."""

    host: str
    binary: str
    service_uuid: str
    service_created: bool
    compute_node_uuid: str | None
    compute_node_created: bool
    ironic_nodes_added: NotRequired[int]
    ironic_nodes: NotRequired[int | None]


class HeartbeatData(TypedDict):
    """``heartbeat``: ``reports`` written, ``missed`` the ones that failed after the first."""

    host: str
    binary: str
    reports: int
    missed: int
    last_seen_up: datetime.datetime | None
    driver: str


class AddInstancesData(TypedDict):
    """``add_instances``; ``database`` masked."""

    added: int
    deleted: int
    database: str | None


# --- deleting hosts and cells --------------------------------------------------


class CellService(TypedDict):
    """A live service a cell database holds (``delete_host``/``delete_cell``)."""

    id: int
    host: str | None
    binary: str | None
    disabled: bool


class CellComputeNode(TypedDict):
    """A live compute node a cell database holds (``delete_host``/``delete_cell``)."""

    id: int
    host: str | None
    hypervisor_hostname: str | None
    uuid: str | None


class CellContentsData(TypedDict):
    """What a cell database holds on a host or in the whole cell; at most 20 UUIDs named."""

    live_instances: int
    live_instance_uuids: list[str]
    deleted_instances: int  # soft-deleted, not archived yet
    services: list[CellService]
    compute_nodes: list[CellComputeNode]


class DeleteRefusalData(TypedDict):
    """What ``delete_host`` and ``delete_cell`` add with a refusal or ``dry_run``: what
    the cell database holds (CellContentsData's keys) and ``reasons`` (what to run first)."""

    dry_run: NotRequired[bool]
    live_instances: NotRequired[int]
    live_instance_uuids: NotRequired[list[str]]
    deleted_instances: NotRequired[int]
    services: NotRequired[list[CellService]]
    compute_nodes: NotRequired[list[CellComputeNode]]
    reasons: NotRequired[list[str]]


class DeleteHostData(DeleteRefusalData):
    """``delete_host``: deleted, or why not (DeleteRefusalData's keys); ``mapped_to`` when
    the host is in another cell."""

    host: str
    cell_uuid: str
    deleted: bool
    nodes_unmapped: NotRequired[int]  # once deleted
    mapped_to: NotRequired[str]


class DeleteCellData(DeleteRefusalData):
    """``delete_cell``: deleted (the ``_deleted`` counts), or with ``dry_run`` or a refusal
    what is in the cell (DeleteRefusalData's keys)."""

    uuid: str
    deleted: bool
    host_mappings_deleted: NotRequired[int]
    instance_mappings_deleted: NotRequired[int]
    name: NotRequired[str | None]
    force: NotRequired[bool]
    hosts: NotRequired[list[str]]
    instance_mappings: NotRequired[int]
    cell_database_error: NotRequired[str]  # the cell database could not be read
