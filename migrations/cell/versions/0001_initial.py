"""Initial cell schema: Nova's services, compute_nodes and instances.

Revision ID: cell_0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql, postgresql

revision = "cell_0001"
down_revision = None
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8"}


def medium_text():
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


def inet_small():
    return sa.String(39).with_variant(postgresql.INET(), "postgresql")


def timestamps():
    return [
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("deleted_at", sa.DateTime),
    ]


def upgrade() -> None:
    op.create_table(
        "services",
        *timestamps(),
        sa.Column("id", sa.Integer, primary_key=True, nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("binary", sa.String(255)),
        sa.Column("topic", sa.String(255)),
        sa.Column("report_count", sa.Integer, nullable=False),
        sa.Column("disabled", sa.Boolean),
        sa.Column("deleted", sa.Integer),
        sa.Column("disabled_reason", sa.String(255)),
        sa.Column("last_seen_up", sa.DateTime, nullable=True),
        sa.Column("forced_down", sa.Boolean(create_constraint=False), default=False),
        sa.Column("version", sa.Integer, default=0),
        sa.Column("uuid", sa.String(36), nullable=True),
        sa.Index("services_uuid_idx", "uuid", unique=True),
        sa.UniqueConstraint("host", "topic", "deleted", name="uniq_services0host0topic0deleted"),
        sa.UniqueConstraint(
            "host", "binary", "deleted", name="uniq_services0host0binary0deleted"
        ),
        **MYSQL,
    )
    op.create_table(
        "compute_nodes",
        *timestamps(),
        sa.Column("id", sa.Integer, primary_key=True, nullable=False),
        sa.Column("service_id", sa.Integer, nullable=True),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("local_gb", sa.Integer, nullable=False),
        sa.Column("vcpus_used", sa.Integer, nullable=False),
        sa.Column("memory_mb_used", sa.Integer, nullable=False),
        sa.Column("local_gb_used", sa.Integer, nullable=False),
        sa.Column("hypervisor_type", medium_text(), nullable=False),
        sa.Column("hypervisor_version", sa.Integer, nullable=False),
        sa.Column("cpu_info", medium_text(), nullable=False),
        sa.Column("disk_available_least", sa.Integer),
        sa.Column("free_ram_mb", sa.Integer),
        sa.Column("free_disk_gb", sa.Integer),
        sa.Column("current_workload", sa.Integer),
        sa.Column("running_vms", sa.Integer),
        sa.Column("hypervisor_hostname", sa.String(255)),
        sa.Column("deleted", sa.Integer),
        sa.Column("host_ip", inet_small()),
        sa.Column("supported_instances", sa.Text),
        sa.Column("pci_stats", sa.Text, nullable=True),
        sa.Column("metrics", sa.Text, nullable=True),
        sa.Column("extra_resources", sa.Text, nullable=True),
        sa.Column("stats", sa.Text, default="{}"),
        sa.Column("numa_topology", sa.Text, nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("ram_allocation_ratio", sa.Float, nullable=True),
        sa.Column("cpu_allocation_ratio", sa.Float, nullable=True),
        sa.Column("uuid", sa.String(36), nullable=True),
        sa.Column("disk_allocation_ratio", sa.Float, nullable=True),
        sa.Column("mapped", sa.Integer, default=0, nullable=True),
        sa.Index("compute_nodes_uuid_idx", "uuid", unique=True),
        sa.UniqueConstraint(
            "host", "hypervisor_hostname", "deleted",
            name="uniq_compute_nodes0host0hypervisor_hostname0deleted",
        ),
        **MYSQL,
    )
    op.create_table(
        "instances",
        *timestamps(),
        sa.Column("id", sa.Integer, primary_key=True, nullable=False),
        sa.Column("internal_id", sa.Integer),
        sa.Column("user_id", sa.String(255)),
        sa.Column("project_id", sa.String(255)),
        sa.Column("image_ref", sa.String(255)),
        sa.Column("kernel_id", sa.String(255)),
        sa.Column("ramdisk_id", sa.String(255)),
        sa.Column("launch_index", sa.Integer),
        sa.Column("key_name", sa.String(255)),
        sa.Column("key_data", medium_text()),
        sa.Column("power_state", sa.Integer),
        sa.Column("vm_state", sa.String(255)),
        sa.Column("memory_mb", sa.Integer),
        sa.Column("vcpus", sa.Integer),
        sa.Column("hostname", sa.String(255)),
        sa.Column("host", sa.String(255)),
        sa.Column("user_data", medium_text()),
        sa.Column("reservation_id", sa.String(255)),
        sa.Column("launched_at", sa.DateTime),
        sa.Column("terminated_at", sa.DateTime),
        sa.Column("display_name", sa.String(255)),
        sa.Column("display_description", sa.String(255)),
        sa.Column("availability_zone", sa.String(255)),
        sa.Column("locked", sa.Boolean),
        sa.Column("os_type", sa.String(255)),
        sa.Column("launched_on", medium_text()),
        sa.Column("instance_type_id", sa.Integer),
        sa.Column("vm_mode", sa.String(255)),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("architecture", sa.String(255)),
        sa.Column("root_device_name", sa.String(255)),
        sa.Column("access_ip_v4", inet_small()),
        sa.Column("access_ip_v6", inet_small()),
        sa.Column("config_drive", sa.String(255)),
        sa.Column("task_state", sa.String(255)),
        sa.Column("default_ephemeral_device", sa.String(255)),
        sa.Column("default_swap_device", sa.String(255)),
        sa.Column("progress", sa.Integer),
        sa.Column("auto_disk_config", sa.Boolean),
        sa.Column("shutdown_terminate", sa.Boolean),
        sa.Column("disable_terminate", sa.Boolean),
        sa.Column("root_gb", sa.Integer),
        sa.Column("ephemeral_gb", sa.Integer),
        sa.Column("cell_name", sa.String(255)),
        sa.Column("node", sa.String(255)),
        sa.Column("deleted", sa.Integer),
        sa.Column("locked_by", sa.Enum("owner", "admin", name="instances0locked_by")),
        sa.Column("cleaned", sa.Integer, default=0),
        sa.Column("ephemeral_key_uuid", sa.String(36)),
        sa.Column("hidden", sa.Boolean(create_constraint=False)),
        sa.Column("compute_id", sa.BigInteger, nullable=True),
        sa.Index("instances_reservation_id_idx", "reservation_id"),
        sa.Index("instances_terminated_at_launched_at_idx", "terminated_at", "launched_at"),
        sa.Index("instances_task_state_updated_at_idx", "task_state", "updated_at"),
        sa.Index("instances_uuid_deleted_idx", "uuid", "deleted"),
        sa.Index("instances_host_node_deleted_idx", "host", "node", "deleted"),
        sa.Index("instances_host_deleted_cleaned_idx", "host", "deleted", "cleaned"),
        sa.Index("instances_project_id_deleted_idx", "project_id", "deleted"),
        sa.Index("instances_deleted_created_at_idx", "deleted", "created_at"),
        sa.Index("instances_project_id_idx", "project_id"),
        sa.Index("instances_updated_at_project_id_idx", "updated_at", "project_id"),
        sa.Index("instances_compute_id_deleted_idx", "compute_id", "deleted"),
        sa.UniqueConstraint("uuid", name="uniq_instances0uuid"),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("instances")
    op.drop_table("compute_nodes")
    op.drop_table("services")
    if op.get_bind().dialect.name == "postgresql":
        sa.Enum(name="instances0locked_by").drop(op.get_bind(), checkfirst=True)
