"""map_cell0, create_cell, list_cells, update_cell, delete_cell through the CLI on every backend."""

from __future__ import annotations

import json
import uuid

import pytest

CELL0 = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def api(cloud):
    cloud.ok("api_db", "sync")
    return cloud


def cells_by_name(cloud):
    return {r["name"]: r for r in cloud.api_rows("cell_mappings")}


def create(cloud, name, n, **extra):
    args = ["create_cell", "--name", name, "--transport-url", f"rabbit://u:pw{n}@mq{n}:5672/",
            "--database_connection", f"mysql+pymysql://nova:dbpw{n}@db{n}/nova{n}", "--verbose"]
    for key, value in extra.items():
        args += [key] if value is True else [key, value]
    result = cloud.ok(*args)
    return result.stdout.strip().splitlines()[-1]


# --- map_cell0 --------------------------------------------------------------


def test_map_cell0_derives_url_from_database(api):
    result = api.run("map_cell0")
    assert result.exit_code == 0
    assert result.stdout == ""
    (row,) = api.api_rows("cell_mappings")
    assert row["uuid"] == CELL0
    assert row["name"] == "cell0"
    assert row["transport_url"] == "none:///"
    assert row["database_connection"].endswith("_cell0") or row[
        "database_connection"
    ].endswith("_cell0.sqlite")
    assert row["created_at"] is not None


def test_map_cell0_twice_keeps_first_url(api):
    api.ok("map_cell0", "--database_connection", "mysql+pymysql://a:b@h/first")
    result = api.run("map_cell0", "--database_connection", "mysql+pymysql://a:b@h/second")
    assert result.exit_code == 0
    assert result.stdout.strip() == "Cell0 is already setup"
    (row,) = api.api_rows("cell_mappings")
    assert row["database_connection"] == "mysql+pymysql://a:b@h/first"


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("mysql+pymysql://nova:pw@db/nova?charset=utf8",
         "mysql+pymysql://nova:pw@db/nova_cell0?charset=utf8"),
        ("mysql+pymysql://nova:abcd0123@AB@controller/nova",
         "mysql+pymysql://nova:abcd0123@AB@controller/nova_cell0"),
        ("mysql+pymysql://nova:abcd0123/AB@controller/nova",
         "mysql+pymysql://nova:abcd0123/AB@controller/nova_cell0"),
        ("mysql+pymysql://nova:p%40ss@ctl/nova", "mysql+pymysql://nova:p%40ss@ctl/nova_cell0"),
        ("postgresql://nova:pw@db/nova?sslmode=require",
         "postgresql://nova:pw@db/nova_cell0?sslmode=require"),
        ("sqlite:////var/lib/nova/cell1.sqlite", "sqlite:////var/lib/nova/cell1_cell0.sqlite"),
        ("sqlite:////tmp/nova", "sqlite:////tmp/nova_cell0"),
    ],
)
def test_map_cell0_name_derivation(sqlite_cloud, configured, expected):
    sqlite_cloud.ok("api_db", "sync")
    result = sqlite_cloud.run("map_cell0", env={"CELLCTL_DATABASE_CONNECTION": configured})
    assert result.exit_code == 0, result.stderr
    (row,) = sqlite_cloud.api_rows("cell_mappings")
    assert row["database_connection"] == expected


@pytest.mark.parametrize("configured", ["sqlite://", "mysql+pymysql://u:secretpw@h"])
def test_map_cell0_without_database_name_is_one_line_error(sqlite_cloud, configured):
    sqlite_cloud.ok("api_db", "sync")
    result = sqlite_cloud.run("map_cell0", env={"CELLCTL_DATABASE_CONNECTION": configured})
    assert result.exit_code == 1
    assert len(result.stdout.strip().splitlines()) == 1
    assert "names no database" in result.stdout
    assert "secretpw" not in result.stderr + result.stdout
    assert sqlite_cloud.api_rows("cell_mappings") == []


# --- create_cell --------------------------------------------------------------


def test_create_cell_verbose_prints_uuid_and_stores_row(api):
    cell_uuid = create(api, "london", 1)
    assert uuid.UUID(cell_uuid)
    (row,) = api.api_rows("cell_mappings")
    assert row["uuid"] == cell_uuid
    assert row["name"] == "london"
    assert row["transport_url"] == "rabbit://u:pw1@mq1:5672/"
    assert row["database_connection"] == "mysql+pymysql://nova:dbpw1@db1/nova1"
    assert not row["disabled"]


def test_create_cell_disabled(api):
    create(api, "dallas", 1, **{"--disabled": True})
    assert cells_by_name(api)["dallas"]["disabled"]


def test_create_cell_duplicate_transport_or_database_is_2(api):
    first = create(api, "a", 1)
    same_mq = api.run("create_cell", "--transport-url", "rabbit://u:pw1@mq1:5672/",
                      "--database_connection", "mysql+pymysql://nova:x@other/db9")
    assert same_mq.exit_code == 2
    assert f"already exists for another cell with uuid {first}." in same_mq.stdout
    same_db = api.run("create_cell", "--transport-url", "rabbit://u:pw@mq9:5672/",
                      "--database_connection", "mysql+pymysql://nova:dbpw1@db1/nova1")
    assert same_db.exit_code == 2
    assert len(api.api_rows("cell_mappings")) == 1


def test_create_cell_uses_settings_and_says_so(api):
    result = api.run("create_cell", "--verbose",
                     env={"CELLCTL_TRANSPORT_URL": "rabbit://guest:guest@mq:5672/"})
    assert result.exit_code == 0
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("--transport-url not provided in the command line")
    # nova-manage's words, whichever source the value came from
    assert lines[0].endswith("using the value [DEFAULT]/transport_url from the configuration file")
    assert lines[1].startswith("--database_connection not provided in the command line")
    (row,) = api.api_rows("cell_mappings")
    assert row["uuid"] == lines[2]
    assert row["name"] is None
    assert row["transport_url"] == "rabbit://guest:guest@mq:5672/"
    assert row["database_connection"] == api.cell_url


@pytest.mark.parametrize(
    ("variable", "flag"),
    [("CELLCTL_TRANSPORT_URL", "--transport-url"),
     ("CELLCTL_DATABASE_CONNECTION", "--database_connection")],
)
def test_create_cell_missing_url_is_1(api, variable, flag):
    result = api.run("create_cell", env={variable: ""})
    assert result.exit_code == 1
    assert f"Must specify {flag}" in result.stdout
    assert api.api_rows("cell_mappings") == []


@pytest.mark.parametrize(
    ("transport", "message"),
    [("rabit://u:secretpw@mq:5672/", "unknown transport 'rabit'"),
     ("not-a-url", "No scheme specified"),
     ("rabbit://u:secretpw@mq:abc/", "port 'abc'")],
)
def test_create_cell_invalid_transport_is_1(api, transport, message):
    result = api.run("create_cell", "--transport-url", transport,
                     "--database_connection", "mysql+pymysql://n:p@h/nova")
    assert result.exit_code == 1
    assert message in result.stdout
    assert result.stdout.count("\n") == 1
    assert "secretpw" not in result.stderr + result.stdout
    assert api.api_rows("cell_mappings") == []


def test_create_cell_invalid_database_url_is_1(api):
    result = api.run("create_cell", "--transport-url", "memory:///",
                     "--database_connection", "nodriver://x:secretpw@h/db")
    assert result.exit_code == 1
    assert "secretpw" not in result.stderr + result.stdout
    assert api.api_rows("cell_mappings") == []


def test_create_cell_accepts_multi_host_rabbit_and_template(api):
    api.ok("create_cell", "--name", "multi", "--transport-url",
           "rabbit://u:p1@h1:5672,u:p2@h2:5672/vhost", "--database_connection",
           "mysql+pymysql://n:p@h/multi")
    result = api.run(
        "create_cell", "--name", "tmpl", "--transport-url", "{scheme}://other-{hostname}:{port}/",
        "--database_connection", "mysql+pymysql://n:p@h/tmpl",
        env={"CELLCTL_TRANSPORT_URL": "rabbit://guest:guest@host:1234/"},
    )
    assert result.exit_code == 0, result.stderr
    assert cells_by_name(api)["tmpl"]["transport_url"] == "{scheme}://other-{hostname}:{port}/"
    listed = api.run("list_cells", "--verbose", "--format", "json",
                     env={"CELLCTL_TRANSPORT_URL": "rabbit://guest:guest@host:1234/"})
    by_name = {c["name"]: c for c in json.loads(listed.stdout)}
    assert by_name["tmpl"]["transport_url"] == "rabbit://other-host:1234/"


# --- list_cells -----------------------------------------------------------------


def test_list_cells_masks_passwords_and_sorts(api):
    api.ok("map_cell0", "--database_connection", "mysql+pymysql://user1:pass1@host1/db0")
    create(api, "london", 1, **{"--disabled": True})
    create(api, "dallas", 2)
    api.ok("create_cell", "--transport-url", "rabbit://u:pw3@mq3/",
           "--database_connection", "sqlite:////tmp/unnamed.sqlite")
    result = api.run("list_cells")
    assert result.exit_code == 0
    out = result.stdout
    for secret in ("pass1", "pw1", "dbpw1", "pw2", "dbpw2", "pw3"):
        assert secret not in out
    assert "mysql+pymysql://user1:****@host1/db0" in out
    assert "rabbit://u:****@mq1:5672/" in out
    assert " none:/ " in out  # none:/// as nova-manage masks it (its urlunparse)
    assert "sqlite://tmp/unnamed.sqlite" in out  # so nova-manage shows it (urlunparse)
    lines = out.splitlines()
    assert [c.strip() for c in lines[1].split("|")[1:-1]] == [
        "Name", "UUID", "Transport URL", "Database Connection", "Disabled"]
    names = [line.split("|")[1].strip() for line in lines[3:-1]]
    assert names == ["", "cell0", "dallas", "london"]
    london = next(line for line in lines if "london" in line)
    assert "True" in london


def test_list_cells_verbose_shows_passwords(api):
    create(api, "london", 1)
    result = api.ok("list_cells", "--verbose")
    assert "rabbit://u:pw1@mq1:5672/" in result.stdout
    assert "mysql+pymysql://nova:dbpw1@db1/nova1" in result.stdout


def test_list_cells_json_and_csv(api):
    cell_uuid = create(api, "london", 1)
    as_json = json.loads(api.ok("--format", "json", "list_cells").stdout)
    assert as_json == [{
        "name": "london", "uuid": cell_uuid, "transport_url": "rabbit://u:****@mq1:5672/",
        "database_connection": "mysql+pymysql://nova:****@db1/nova1", "disabled": False,
    }]
    as_csv = api.ok("list_cells", "--format", "csv").stdout.splitlines()
    assert as_csv[0] == "name,uuid,transport_url,database_connection,disabled"
    assert as_csv[1].startswith(f"london,{cell_uuid},rabbit://u:****@mq1:5672/")


def test_list_cells_empty(api):
    result = api.ok("list_cells", "--format", "json")
    assert json.loads(result.stdout) == []


# --- update_cell -----------------------------------------------------------------


def test_update_cell_takes_absent_urls_from_the_configuration(api):
    """As nova-manage: update_cell without URL flags persists [DEFAULT]/transport_url
    and [database]/connection (openstack-helm, nova-operator and kolla rely on it)."""
    cell_uuid = create(api, "london", 1)
    result = api.run("update_cell", "--cell_uuid", cell_uuid, "--name", "paris",
                     env={"CELLCTL_TRANSPORT_URL": "rabbit://cfg:cfg@cfg/"})
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "--transport-url not provided in the command line, using the value "
        "[DEFAULT]/transport_url from the configuration file",
        "--database_connection not provided in the command line, using the value "
        "[database]/connection from the configuration file"]
    row = cells_by_name(api)["paris"]
    assert row["transport_url"] == "rabbit://cfg:cfg@cfg/"
    assert row["database_connection"] == api.cell_url
    assert row["updated_at"] is not None


def test_update_cell_without_configured_urls_changes_only_named_fields(api):
    cell_uuid = create(api, "london", 1)
    result = api.run("update_cell", "--cell_uuid", cell_uuid, "--name", "paris",
                     env={"CELLCTL_DATABASE_CONNECTION": "", "CELLCTL_TRANSPORT_URL": ""})
    assert result.exit_code == 0, result.stdout
    assert result.stdout == ""
    row = cells_by_name(api)["paris"]
    assert row["transport_url"] == "rabbit://u:pw1@mq1:5672/"
    assert row["database_connection"] == "mysql+pymysql://nova:dbpw1@db1/nova1"


def test_update_cell_urls(api):
    cell_uuid = create(api, "london", 1)
    api.ok("update_cell", "--cell_uuid", cell_uuid, "--transport-url", "rabbit://n:n@new/",
           "--database_connection", "mysql+pymysql://n:n@new/new")
    row = cells_by_name(api)["london"]
    assert row["transport_url"] == "rabbit://n:n@new/"
    assert row["database_connection"] == "mysql+pymysql://n:n@new/new"


def test_update_cell_not_found_and_malformed_uuid_are_1(api):
    missing = api.run("update_cell", "--cell_uuid", str(uuid.uuid4()), "--name", "x")
    assert missing.exit_code == 1
    assert "not found" in missing.stdout
    malformed = api.run("update_cell", "--cell_uuid", "not-a-uuid", "--name", "x")
    assert malformed.exit_code == 1
    assert "not found" in malformed.stdout


def test_update_cell_url_of_other_cell_is_3(api):
    create(api, "one", 1)
    two = create(api, "two", 2)
    for mq, db in [(1, 1), (1, 3), (3, 1)]:
        result = api.run("update_cell", "--cell_uuid", two,
                         "--transport-url", f"rabbit://u:pw{mq}@mq{mq}:5672/",
                         "--database_connection", f"mysql+pymysql://nova:dbpw{db}@db{db}/nova{db}")
        assert result.exit_code == 3, (mq, db)
    assert cells_by_name(api)["two"]["transport_url"] == "rabbit://u:pw2@mq2:5672/"
    api.ok("update_cell", "--cell_uuid", two, "--transport-url", "rabbit://u:pw3@mq3:5672/",
           "--database_connection", "mysql+pymysql://nova:dbpw3@db3/nova3")
    # A cell may keep its own URLs.
    api.ok("update_cell", "--cell_uuid", two, "--transport-url", "rabbit://u:pw3@mq3:5672/")


def test_update_cell_invalid_url_is_2(api):
    cell_uuid = create(api, "one", 1)
    result = api.run("update_cell", "--cell_uuid", cell_uuid, "--name", "renamed",
                     "--transport-url", "rabit://x:secretpw@h/")
    assert result.exit_code == 2
    assert "secretpw" not in result.stderr + result.stdout
    assert cells_by_name(api)["one"]["transport_url"] == "rabbit://u:pw1@mq1:5672/"


def test_update_cell_disable_enable(api):
    cell_uuid = create(api, "one", 1)
    both = api.run("update_cell", "--cell_uuid", cell_uuid, "--disable", "--enable")
    assert both.exit_code == 4
    assert "Cell cannot be disabled and enabled at the same time." in both.stdout
    api.ok("update_cell", "--cell_uuid", cell_uuid, "--disable")
    assert cells_by_name(api)["one"]["disabled"]
    again = api.ok("update_cell", "--cell_uuid", cell_uuid, "--disable")
    # after the config-fallback notices, as nova-manage prints them
    assert again.stdout.splitlines()[-1] == f"Cell {cell_uuid} is already disabled"
    api.ok("update_cell", "--cell_uuid", cell_uuid, "--enable")
    assert not cells_by_name(api)["one"]["disabled"]
    again = api.ok("update_cell", "--cell_uuid", cell_uuid, "--enable")
    assert again.stdout.splitlines()[-1] == f"Cell {cell_uuid} is already enabled"


def test_update_cell0_enable_disable_is_5_but_rename_works(api):
    api.ok("map_cell0")
    for flag in ("--disable", "--enable"):
        result = api.run("update_cell", "--cell_uuid", CELL0, flag)
        assert result.exit_code == 5
        assert "Cell0 cannot be disabled." in result.stdout
    api.ok("update_cell", "--cell_uuid", CELL0, "--name", "zero",
           "--transport-url", "none:/")  # as kolla and OSA write it
    assert cells_by_name(api)["zero"]["transport_url"] == "none:/"
    # without --transport-url, nova-manage writes the configured one over cell0's
    api.ok("update_cell", "--cell_uuid", CELL0)
    assert cells_by_name(api)["zero"]["transport_url"] == "memory:///"


def test_update_cell_via_cell_v2_and_option_prefix(api):
    cell_uuid = create(api, "one", 1)
    api.ok("cell_v2", "update_cell", "--cell", cell_uuid, "--name", "two")
    assert "two" in cells_by_name(api)


# --- delete_cell -----------------------------------------------------------------


@pytest.fixture
def with_cell(cloud):
    """Synced schemas and a cell 'c1' whose database is the test's cell database."""
    cloud.synced()
    result = cloud.ok("create_cell", "--name", "c1", "--verbose")
    cloud.cell_uuid = result.stdout.strip().splitlines()[-1]
    cloud.cell_id = cells_by_name(cloud)["c1"]["id"]
    return cloud


def add_instance(cloud, deleted=False):
    instance_uuid = str(uuid.uuid4())
    cloud.execute(cloud.cell_url,
                  "INSERT INTO instances (uuid, project_id, user_id, deleted, created_at) "
                  "VALUES (:u, 'p', 'u', 0, CURRENT_TIMESTAMP)", {"u": instance_uuid})
    if deleted:
        cloud.execute(cloud.cell_url, "UPDATE instances SET deleted = id WHERE uuid = :u",
                      {"u": instance_uuid})
    cloud.execute(cloud.api_url,
                  "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id, user_id, "
                  "queued_for_delete) VALUES (:u, :c, 'p', 'u', :q)",
                  {"u": instance_uuid, "c": cloud.cell_id, "q": False})
    return instance_uuid


def add_host(cloud, host, mapped=1):
    cloud.execute(cloud.cell_url,
                  "INSERT INTO compute_nodes (host, hypervisor_hostname, vcpus, memory_mb, "
                  "local_gb, vcpus_used, memory_mb_used, local_gb_used, hypervisor_type, "
                  "hypervisor_version, cpu_info, deleted, mapped, uuid) VALUES (:h, :h, 1, 1, 1, "
                  "0, 0, 0, 'fake', 1, '{}', 0, :m, :u)",
                  {"h": host, "m": mapped, "u": str(uuid.uuid4())})
    cloud.execute(cloud.api_url, "INSERT INTO host_mappings (cell_id, host) VALUES (:c, :h)",
                  {"c": cloud.cell_id, "h": host})


def test_delete_cell_not_found_is_1(api):
    result = api.run("delete_cell", "--cell_uuid", str(uuid.uuid4()))
    assert result.exit_code == 1
    assert "was not found." in result.stdout
    assert api.run("delete_cell", "--cell_uuid", "garbage").exit_code == 1


def test_delete_empty_cell(with_cell):
    result = with_cell.run("delete_cell", "--cell_uuid", with_cell.cell_uuid)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert with_cell.api_rows("cell_mappings") == []


def test_delete_cell_with_hosts_is_2_unless_forced(with_cell):
    add_host(with_cell, "h1")
    result = with_cell.run("delete_cell", "--cell_uuid", with_cell.cell_uuid)
    assert result.exit_code == 2
    assert "There are existing hosts mapped to cell" in result.stdout
    assert len(with_cell.api_rows("host_mappings")) == 1
    with_cell.ok("delete_cell", "--cell_uuid", with_cell.cell_uuid, "--force")
    assert with_cell.api_rows("host_mappings") == []
    assert with_cell.api_rows("cell_mappings") == []
    (node,) = with_cell.rows(with_cell.cell_url, "compute_nodes")
    assert node["mapped"] == 0


def test_delete_cell_with_living_instance_is_3_even_forced(with_cell):
    add_instance(with_cell)
    for extra in ([], ["--force"]):
        result = with_cell.run("delete_cell", "--cell_uuid", with_cell.cell_uuid, *extra)
        assert result.exit_code == 3
        assert "There are existing instances mapped to cell" in result.stdout
    assert len(with_cell.api_rows("instance_mappings")) == 1
    assert len(with_cell.api_rows("cell_mappings")) == 1


def test_delete_cell_with_deleted_instances_is_4_unless_forced(with_cell):
    add_instance(with_cell, deleted=True)
    add_host(with_cell, "h1")
    result = with_cell.run("delete_cell", "--cell_uuid", with_cell.cell_uuid)
    assert result.exit_code == 2  # hosts are checked first, as nova-manage does
    with_cell.execute(with_cell.api_url, "DELETE FROM host_mappings")
    result = with_cell.run("delete_cell", "--cell_uuid", with_cell.cell_uuid)
    assert result.exit_code == 4
    assert "but all instances have been deleted in the cell." in result.stdout
    with_cell.ok("delete_cell", "--cell_uuid", with_cell.cell_uuid, "--force")
    assert with_cell.api_rows("instance_mappings") == []
    assert with_cell.api_rows("cell_mappings") == []


def test_delete_cell_json_result(with_cell):
    add_host(with_cell, "h1")
    result = with_cell.ok("delete_cell", "--cell_uuid", with_cell.cell_uuid, "--force",
                          "--format", "json")
    assert json.loads(result.stdout) == {
        "uuid": with_cell.cell_uuid, "deleted": True, "host_mappings_deleted": 1,
        "instance_mappings_deleted": 0, "exit_code": 0,
    }
