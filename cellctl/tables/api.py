"""The API database: cell_mappings, host_mappings, instance_mappings (as Nova has them)."""

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

_MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8"}

cell_mappings = Table(
    "cell_mappings",
    metadata,
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Column("id", Integer, primary_key=True, nullable=False),
    Column("uuid", String(36), nullable=False),
    Column("name", String(255)),
    Column("transport_url", Text),
    Column("database_connection", Text),
    Column("disabled", Boolean(create_constraint=False), default=False),
    UniqueConstraint("uuid", name="uniq_cell_mappings0uuid"),
    Index("uuid_idx", "uuid"),
    **_MYSQL,
)

host_mappings = Table(
    "host_mappings",
    metadata,
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Column("id", Integer, primary_key=True, nullable=False),
    Column("cell_id", Integer, ForeignKey("cell_mappings.id"), nullable=False),
    Column("host", String(255), nullable=False),
    UniqueConstraint("host", name="uniq_host_mappings0host"),
    Index("host_idx", "host"),
    **_MYSQL,
)

instance_mappings = Table(
    "instance_mappings",
    metadata,
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Column("id", Integer, primary_key=True, nullable=False),
    Column("instance_uuid", String(36), nullable=False),
    Column("cell_id", Integer, ForeignKey("cell_mappings.id"), nullable=True),
    Column("project_id", String(255), nullable=False),
    Column("queued_for_delete", Boolean(create_constraint=False), default=False),
    Column("user_id", String(255), nullable=True),
    UniqueConstraint("instance_uuid", name="uniq_instance_mappings0instance_uuid"),
    Index("instance_uuid_idx", "instance_uuid"),
    Index("project_id_idx", "project_id"),
    Index("instance_mappings_user_id_project_id_idx", "user_id", "project_id"),
    **_MYSQL,
)
