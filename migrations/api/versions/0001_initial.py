"""Initial API schema: Nova's cell_mappings, host_mappings, instance_mappings.

Revision ID: api_0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "api_0001"
down_revision = None
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8"}


def upgrade() -> None:
    op.create_table(
        "cell_mappings",
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("id", sa.Integer, primary_key=True, nullable=False),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("transport_url", sa.Text),
        sa.Column("database_connection", sa.Text),
        sa.Column("disabled", sa.Boolean(create_constraint=False), default=False),
        sa.UniqueConstraint("uuid", name="uniq_cell_mappings0uuid"),
        sa.Index("uuid_idx", "uuid"),
        **MYSQL,
    )
    op.create_table(
        "host_mappings",
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("id", sa.Integer, primary_key=True, nullable=False),
        sa.Column("cell_id", sa.Integer, nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.UniqueConstraint("host", name="uniq_host_mappings0host"),
        sa.Index("host_idx", "host"),
        sa.ForeignKeyConstraint(columns=["cell_id"], refcolumns=["cell_mappings.id"]),
        **MYSQL,
    )
    op.create_table(
        "instance_mappings",
        sa.Column("created_at", sa.DateTime),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("id", sa.Integer, primary_key=True, nullable=False),
        sa.Column("instance_uuid", sa.String(36), nullable=False),
        sa.Column("cell_id", sa.Integer, nullable=True),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("queued_for_delete", sa.Boolean(create_constraint=False), default=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.UniqueConstraint("instance_uuid", name="uniq_instance_mappings0instance_uuid"),
        sa.Index("instance_uuid_idx", "instance_uuid"),
        sa.Index("project_id_idx", "project_id"),
        sa.Index("instance_mappings_user_id_project_id_idx", "user_id", "project_id"),
        sa.ForeignKeyConstraint(columns=["cell_id"], refcolumns=["cell_mappings.id"]),
        **MYSQL,
    )


def downgrade() -> None:
    op.drop_table("instance_mappings")
    op.drop_table("host_mappings")
    op.drop_table("cell_mappings")
