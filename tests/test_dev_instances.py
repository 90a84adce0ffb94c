"""``cellctl dev add-instances``: fake instances for demos, never into a Nova database."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from cellctl.tables.cell import metadata as cell_metadata


def test_adds_instances_oldest_deleted(cloud_no_pg):
    cloud = cloud_no_pg
    cloud.synced()
    result = cloud.run("--format", "json", "dev", "add-instances", "--count", "7",
                       "--host", "compute1", "--deleted", "2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 7
    rows = cloud.rows(cloud.cell_url, "instances")
    assert len(rows) == 7
    assert len({r["uuid"] for r in rows}) == 7
    assert {r["host"] for r in rows} == {"compute1"}
    assert all(r["project_id"] and r["user_id"] and r["created_at"] for r in rows)
    deleted = [r for r in rows if r["deleted"]]
    assert [r["id"] for r in deleted] == [rows[0]["id"], rows[1]["id"]]
    for row in deleted:
        assert row["deleted"] == row["id"]  # Nova's soft delete
        assert row["vm_state"] == "deleted"
        assert row["deleted_at"] is not None
    assert all(r["vm_state"] == "active" and r["deleted"] == 0 for r in rows[2:])


def test_refuses_a_database_nova_manages(sqlite_cloud):
    sqlite_cloud.ok("api_db", "sync")
    # Nova's schema: its tables and its own alembic_version, no cellctl version table.
    engine = sa.create_engine(sqlite_cloud.cell_url)
    cell_metadata.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('ab450ba04102')")
    engine.dispose()

    result = sqlite_cloud.run("dev", "add-instances", "--count", "3")

    assert result.exit_code == 1
    assert "managed by Nova" in result.stderr
    assert sqlite_cloud.rows(sqlite_cloud.cell_url, "instances") == []


def test_refuses_a_database_without_schema(sqlite_cloud):
    sqlite_cloud.execute(sqlite_cloud.cell_url, "CREATE TABLE unrelated (id INTEGER)")
    result = sqlite_cloud.run("dev", "add-instances", "--count", "3")
    assert result.exit_code == 1
    assert "db sync" in result.stderr


@pytest.mark.parametrize("args", [["--count", "0"], ["--count", "2", "--deleted", "3"],
                                  ["--count", "2", "--deleted", "-1"]])
def test_bad_counts_are_1(sqlite_cloud, args):
    sqlite_cloud.synced()
    result = sqlite_cloud.run("dev", "add-instances", *args)
    assert result.exit_code == 1
    assert sqlite_cloud.rows(sqlite_cloud.cell_url, "instances") == []


def test_embedded_default_is_created_on_first_use(tmp_path):
    """On a fresh machine the embedded cell database is created and filled."""
    from click.testing import CliRunner

    from cellctl.cli import main

    env = {"CELLCTL_STATE_DIR": str(tmp_path / "state"), "CELLCTL_API_DATABASE_CONNECTION": None,
           "CELLCTL_DATABASE_CONNECTION": None, "CELLCTL_TRANSPORT_URL": None}
    result = CliRunner(env=env).invoke(main, ["dev", "add-instances", "--count", "4"])
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state' / 'cell1.sqlite'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM instances").scalar() == 4
    engine.dispose()
