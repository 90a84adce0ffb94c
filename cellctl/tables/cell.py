"""The cell database tables cellctl uses: services, compute_nodes, instances.

Columns, types and constraints are Nova's (nova/db/main), so cellctl can work
on a database Nova created and Nova on one cellctl created. Soft delete is
Nova's: ``deleted = 0`` is live, ``deleted = id`` is deleted.
"""

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Enum,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql, postgresql

metadata = MetaData()

# services.binary of a compute service
COMPUTE_BINARY = "nova-compute"
# compute_nodes.hypervisor_type of Nova's Ironic driver
IRONIC = "ironic"

_MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8"}


def medium_text() -> Text:
    return Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def inet_small() -> String:
    return String(39).with_variant(postgresql.INET(), "postgresql")


def _timestamps() -> list[Column]:
    return [Column("created_at", DateTime), Column("updated_at", DateTime),
            Column("deleted_at", DateTime)]


services = Table(
    "services",
    metadata,
    *_timestamps(),
    Column("id", Integer, primary_key=True, nullable=False),
    Column("host", String(255)),
    Column("binary", String(255)),
    Column("topic", String(255)),
    Column("report_count", Integer, nullable=False),
    Column("disabled", Boolean),
    Column("deleted", Integer),
    Column("disabled_reason", String(255)),
    Column("last_seen_up", DateTime, nullable=True),
    Column("forced_down", Boolean(create_constraint=False), default=False),
    Column("version", Integer, default=0),
    Column("uuid", String(36), nullable=True),
    Index("services_uuid_idx", "uuid", unique=True),
    UniqueConstraint("host", "topic", "deleted", name="uniq_services0host0topic0deleted"),
    UniqueConstraint("host", "binary", "deleted", name="uniq_services0host0binary0deleted"),
    **_MYSQL,
)

compute_nodes = Table(
    "compute_nodes",
    metadata,
    *_timestamps(),
    Column("id", Integer, primary_key=True, nullable=False),
    Column("service_id", Integer, nullable=True),
    Column("vcpus", Integer, nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("local_gb", Integer, nullable=False),
    Column("vcpus_used", Integer, nullable=False),
    Column("memory_mb_used", Integer, nullable=False),
    Column("local_gb_used", Integer, nullable=False),
    Column("hypervisor_type", medium_text(), nullable=False),
    Column("hypervisor_version", Integer, nullable=False),
    Column("cpu_info", medium_text(), nullable=False),
    Column("disk_available_least", Integer),
    Column("free_ram_mb", Integer),
    Column("free_disk_gb", Integer),
    Column("current_workload", Integer),
    Column("running_vms", Integer),
    Column("hypervisor_hostname", String(255)),
    Column("deleted", Integer),
    Column("host_ip", inet_small()),
    Column("supported_instances", Text),
    Column("pci_stats", Text, nullable=True),
    Column("metrics", Text, nullable=True),
    Column("extra_resources", Text, nullable=True),
    Column("stats", Text, default="{}"),
    Column("numa_topology", Text, nullable=True),
    Column("host", String(255), nullable=True),
    Column("ram_allocation_ratio", Float, nullable=True),
    Column("cpu_allocation_ratio", Float, nullable=True),
    Column("uuid", String(36), nullable=True),
    Column("disk_allocation_ratio", Float, nullable=True),
    Column("mapped", Integer, default=0, nullable=True),
    Index("compute_nodes_uuid_idx", "uuid", unique=True),
    UniqueConstraint(
        "host", "hypervisor_hostname", "deleted",
        name="uniq_compute_nodes0host0hypervisor_hostname0deleted",
    ),
    **_MYSQL,
)

instances = Table(
    "instances",
    metadata,
    *_timestamps(),
    Column("id", Integer, primary_key=True, nullable=False),
    Column("internal_id", Integer),
    Column("user_id", String(255)),
    Column("project_id", String(255)),
    Column("image_ref", String(255)),
    Column("kernel_id", String(255)),
    Column("ramdisk_id", String(255)),
    Column("launch_index", Integer),
    Column("key_name", String(255)),
    Column("key_data", medium_text()),
    Column("power_state", Integer),
    Column("vm_state", String(255)),
    Column("memory_mb", Integer),
    Column("vcpus", Integer),
    Column("hostname", String(255)),
    Column("host", String(255)),
    Column("user_data", medium_text()),
    Column("reservation_id", String(255)),
    Column("launched_at", DateTime),
    Column("terminated_at", DateTime),
    Column("display_name", String(255)),
    Column("display_description", String(255)),
    Column("availability_zone", String(255)),
    Column("locked", Boolean),
    Column("os_type", String(255)),
    Column("launched_on", medium_text()),
    Column("instance_type_id", Integer),
    Column("vm_mode", String(255)),
    Column("uuid", String(36), nullable=False),
    Column("architecture", String(255)),
    Column("root_device_name", String(255)),
    Column("access_ip_v4", inet_small()),
    Column("access_ip_v6", inet_small()),
    Column("config_drive", String(255)),
    Column("task_state", String(255)),
    Column("default_ephemeral_device", String(255)),
    Column("default_swap_device", String(255)),
    Column("progress", Integer),
    Column("auto_disk_config", Boolean),
    Column("shutdown_terminate", Boolean),
    Column("disable_terminate", Boolean),
    Column("root_gb", Integer),
    Column("ephemeral_gb", Integer),
    Column("cell_name", String(255)),
    Column("node", String(255)),
    Column("deleted", Integer),
    Column("locked_by", Enum("owner", "admin", name="instances0locked_by")),
    Column("cleaned", Integer, default=0),
    Column("ephemeral_key_uuid", String(36)),
    Column("hidden", Boolean(create_constraint=False)),
    Column("compute_id", BigInteger, nullable=True),
    Index("instances_reservation_id_idx", "reservation_id"),
    Index("instances_terminated_at_launched_at_idx", "terminated_at", "launched_at"),
    Index("instances_task_state_updated_at_idx", "task_state", "updated_at"),
    Index("instances_uuid_deleted_idx", "uuid", "deleted"),
    Index("instances_host_node_deleted_idx", "host", "node", "deleted"),
    Index("instances_host_deleted_cleaned_idx", "host", "deleted", "cleaned"),
    Index("instances_project_id_deleted_idx", "project_id", "deleted"),
    Index("instances_deleted_created_at_idx", "deleted", "created_at"),
    Index("instances_project_id_idx", "project_id"),
    Index("instances_updated_at_project_id_idx", "updated_at", "project_id"),
    Index("instances_compute_id_deleted_idx", "compute_id", "deleted"),
    UniqueConstraint("uuid", name="uniq_instances0uuid"),
    **_MYSQL,
)
