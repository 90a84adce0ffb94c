"""api_db / db sync and version on every backend, and Nova-owned schemas left alone."""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from cellctl import migrate


def tables(url):
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_heads_constant_matches_alembic():
    from alembic.config import Config

    for kind in ("api", "cell"):
        config = Config()
        config.set_main_option("script_location", str(migrate.script_location(kind)))
        assert ScriptDirectory.from_config(config).get_heads() == [migrate.HEADS[kind]]


def test_api_db_sync_creates_nova_tables_with_own_version_table(cloud):
    result = cloud.ok("api_db", "sync")
    assert "created at api_0001" in result.stderr
    assert tables(cloud.api_url) == {
        "cell_mappings", "host_mappings", "instance_mappings", "cellctl_api_version"}
    again = cloud.ok("api_db", "sync")
    assert "already at api_0001" in again.stderr
    assert cloud.ok("api_db", "version").stdout.strip() == "api_0001"


def test_api_db_columns_match_nova(cloud):
    cloud.ok("api_db", "sync")
    engine = sa.create_engine(cloud.api_url)
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"]: c for c in inspector.get_columns("instance_mappings")}
        uniques = {u["name"] for u in inspector.get_unique_constraints("host_mappings")}
    finally:
        engine.dispose()
    assert list(columns) == ["created_at", "updated_at", "id", "instance_uuid", "cell_id",
                             "project_id", "queued_for_delete", "user_id"]
    assert columns["project_id"]["nullable"] is False
    assert columns["cell_id"]["nullable"] is True
    assert "uniq_host_mappings0host" in uniques


def test_db_sync_syncs_database_and_cell0(cloud):
    cloud.ok("api_db", "sync")
    first = cloud.run("db", "sync")
    assert first.exit_code == 0
    assert "cell0 mapping not found - not syncing cell0." in first.stdout
    cloud.ok("map_cell0")
    second = cloud.ok("db", "sync", "--format", "json")
    databases = json.loads(second.stdout)["databases"]
    assert [d["database"] for d in databases] == [  # nova-manage's order: cell0 first
        "cell0 database", "cell database ([database] connection)"]
    assert all(d["current"] and d["managed_by"] == "cellctl" for d in databases)
    cell0_url = cloud.api_rows("cell_mappings")[0]["database_connection"]
    assert {"services", "compute_nodes", "instances", "cellctl_cell_version"} <= tables(cell0_url)
    assert cloud.ok("db", "version").stdout.strip() == "cell_0001"


def test_db_sync_all_cells(cloud):
    cloud.ok("api_db", "sync")
    other = cloud.factory.new("cell2")
    cloud.ok("create_cell", "--name", "cell2", "--database_connection", other,
             "--transport-url", "rabbit://mq2/")
    cloud.ok("db", "sync")
    assert "instances" not in tables(other)
    cloud.ok("db", "sync", "--all-cells")
    assert "instances" in tables(other)


def test_db_sync_reports_unreachable_cell(sqlite_cloud):
    cloud = sqlite_cloud
    cloud.ok("api_db", "sync")
    cloud.ok("create_cell", "--name", "dead", "--database_connection",
             "mysql+pymysql://root:secretpw@127.0.0.1:1/dead", "--transport-url", "rabbit://mq/")
    result = cloud.run("db", "sync", "--all-cells")
    assert result.exit_code == 1
    assert "Unable to sync the database of cell dead" in result.stdout
    assert "secretpw" not in result.stderr + result.stdout
    assert "instances" in tables(cloud.cell_url)  # the reachable one was still synced


def test_sqlalchemy_migrate_versions_are_refused(cloud):
    result = cloud.run("api_db", "sync", "215")
    assert result.exit_code == 255  # nova-manage raises: exit 255, 'An error has occurred:'
    assert result.stdout.startswith("An error has occurred:\n")
    assert "sqlalchemy-migrate" in result.stdout


def test_unknown_revision_is_nova_manages_crash(cloud):
    """nova-manage 34 crashes on it (255, its prefix, alembic's CommandError): the same,
    without the traceback (difference 1)."""
    result = cloud.run("api_db", "sync", "nonexistent")
    assert result.exit_code == 255
    assert result.stdout == ("An error has occurred:\n"
                             "CommandError: Can't locate revision identified by 'nonexistent'\n")
    engine = sa.create_engine(cloud.api_url)
    try:  # nothing written: an empty version table would pass for a schema afterwards
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    cloud.ok("api_db", "sync")
    result = cloud.run("db", "sync", "--local_cell", "nonexistent")
    assert (result.exit_code, result.stdout.splitlines()[0]) == (255, "An error has occurred:")


def test_db_sync_without_a_readable_cell_mappings_is_nova_manages_text(cloud):
    """No API schema yet: cell0 cannot be looked up. nova-manage prints its
    ``Could not access cell0`` questions and exits 1 without syncing [database]."""
    result = cloud.run("db", "sync")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[:7] == [
        "ERROR: Could not access cell0.",
        "Has the nova_api database been created?",
        "Has the nova_cell0 database been created?",
        'Has "nova-manage api_db sync" been run?',
        'Has "nova-manage cell_v2 map_cell0" been run?',
        "Is [api_database]/connection set in nova.conf?",
        "Is the cell0 database connection URL correct?"], result.stdout
    # the driver's error (SQLite: the file cellctl does not create for a read)
    assert lines[7].startswith("Error: ") and ("cell_mappings" in lines[7]
                                               or "does not exist" in lines[7]), lines
    assert "cellctl_cell_version" not in tables(cloud.cell_url)  # [database] untouched


def make_nova_owned(url, key_table, revision):
    engine = sa.create_engine(url)
    # db sync reads cell0's row from cell_mappings, as nova-manage does
    extra = (", name VARCHAR(255), database_connection TEXT" if key_table == "cell_mappings"
             else "")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                f"CREATE TABLE {key_table} (id INTEGER PRIMARY KEY, uuid VARCHAR(36){extra})"))
            conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
            conn.execute(sa.text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})
    finally:
        engine.dispose()


def test_sync_leaves_nova_schemas_alone(cloud):
    make_nova_owned(cloud.api_url, "cell_mappings", migrate.NOVA_HEADS["api"])
    make_nova_owned(cloud.cell_url, "instances", migrate.NOVA_HEADS["cell"])
    before = (tables(cloud.api_url), tables(cloud.cell_url))
    api = cloud.ok("api_db", "sync")
    assert "schema is managed by Nova (revision cdeec0c85668); nothing changed" in api.stderr
    cell = cloud.run("db", "sync", "--local_cell")  # kolla's; without it, cell0 first
    assert cell.exit_code == 0
    assert "schema is managed by Nova" in cell.stderr
    assert api.stdout == cell.stdout == ""  # as nova-manage: kolla counts stdout as a change
    assert (tables(cloud.api_url), tables(cloud.cell_url)) == before
    version = cloud.ok("api_db", "version", "--format", "json")
    assert json.loads(version.stdout)["managed_by"] == "nova"
