"""``status`` through the CLI: the upgrade checks on every backend, and cells that are
dead, frozen or black-holed, with and without ``--check-connectivity``."""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
from cellrows import add_compute_nodes, add_services, map_hosts, map_instances
from conftest import MYSQL_SERVER, RABBITMQ_URL, DatabaseFactory, unavailable
from instance_helpers import add_instances
from servers import PASSWORD, black_hole, closed_port, silent_port

CELL0 = "00000000-0000-0000-0000-000000000000"
CELL0_LABEL = f"cell 'cell0' ({CELL0})"
SECRET = "s3cret-dbpass"


@pytest.fixture
def cloud_no_pg(backend_no_pg, tmp_path, make_cloud):
    """A cloud on SQLite or MariaDB, where PostgreSQL would add time but no coverage."""
    factory = DatabaseFactory(backend_no_pg, tmp_path)
    yield make_cloud(factory)
    factory.drop_all()


def setup_cells(cloud, transport="memory:///"):
    """API schema, cell0 and cell1 (cloud.cell_url) synced; returns cell1's UUID."""
    cloud.ok("api_db", "sync")
    cloud.ok("map_cell0")
    cloud.ok("db", "sync")
    add_live_conductor(cloud.cell_url)
    return create_cell(cloud, "cell1", cloud.cell_url, transport)


def add_live_conductor(url, host="conductor-1"):
    from cellctl.clock import utcnow

    add_services(url, [host], "nova-conductor", last_seen_up=utcnow())


def create_cell(cloud, name, database, transport="memory:///"):
    result = cloud.ok("create_cell", "--name", name, "--transport-url", transport,
                      "--database_connection", database, "--verbose")
    return result.stdout.strip().splitlines()[-1]


def sync_cell_database(cloud, url):
    result = cloud.run("db", "sync", env={"CELLCTL_DATABASE_CONNECTION": url})
    assert result.exit_code == 0, result.stderr


def cell0_url(cloud):
    (row,) = [r for r in cloud.api_rows("cell_mappings") if r["uuid"] == CELL0]
    return row["database_connection"]


def status_json(cloud, *args):
    result = cloud.run("--format", "json", "status", *args)
    payload = json.loads(result.stdout)
    assert payload["exit_code"] == result.exit_code
    return result, payload


def rows(payload):
    return [(c["check"], c["result"], c["details"]) for c in payload["checks"]]


def plain_rows(*, cells=1, databases=2, hosts="all 2 compute hosts are mapped",
               instances="all 3 instances are mapped"):
    """The rows of a cloud that passes every check."""
    return [
        ("Cell0 mapping", "success", "cell0 is mapped"),
        ("Cell mappings", "success", f"{cells} cell{'s' if cells > 1 else ''} besides cell0"),
        ("Cell databases", "success", f"all {databases} cell databases answered"),
        ("API database schema", "success", "at head (api_0001)"),
        ("Cell database schemas", "success", f"{databases} cell databases at head"),
        ("Host mappings", "success", hosts),
        ("Instance mappings", "success", instances),
        ("Cell conductors", "success",
         f"every cell has a live nova-conductor ({cells} cell{'s' if cells > 1 else ''}, "
         "db driver)"),
        ("Compute service versions", "success", "no nova-compute services to check"),
    ]


def assert_no_secret(result, *secrets):
    for secret in secrets:
        assert secret not in result.stdout
        assert secret not in result.stderr


def populate_healthy(cloud, cell1):
    """Two mapped hosts, three mapped instances (one deleted), and rows status must ignore."""
    add_compute_nodes(cloud.cell_url, ["host-a", "host-b"])
    add_compute_nodes(cloud.cell_url, ["gone"], deleted=True)  # deleted node: not a host
    map_hosts(cloud.api_url, cell1, ["host-a", "host-b"])
    live = add_instances(cloud.cell_url, 2)
    deleted = add_instances(cloud.cell_url, 1, deleted=True)
    add_instances(cloud.cell_url, 1, hidden=True)  # a move's hidden copy: never mapped
    map_instances(cloud.api_url, cell1, live + deleted)


# --- the upgrade checks ------------------------------------------------------


def test_healthy_cloud_passes(cloud):
    cell1 = setup_cells(cloud)
    populate_healthy(cloud, cell1)

    result, payload = status_json(cloud)

    assert result.exit_code == 0, result.stderr
    assert rows(payload) == plain_rows()
    assert payload["unreachable_cells"] == []
    assert "connectivity" not in payload
    assert result.stderr == ""

    table = cloud.run("cell_v2", "status")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert re.fullmatch(r"\|\s+Check\s+\|\s+Result\s+\|\s+Details\s+\|", lines[1])
    assert [line.split("|")[2].strip() for line in lines[3:-1]] == ["Success"] * 9


def test_one_host_and_one_instance_in_the_singular(sqlite_cloud):
    """Issue 22 (plurals): one of a thing is never "all 1 ... are"."""
    cloud = sqlite_cloud
    cell1 = setup_cells(cloud)
    add_compute_nodes(cloud.cell_url, ["host-a"])
    map_hosts(cloud.api_url, cell1, ["host-a"])
    map_instances(cloud.api_url, cell1, add_instances(cloud.cell_url, 1))
    result, payload = status_json(cloud)
    assert result.exit_code == 0, result.stderr
    assert rows(payload) == plain_rows(hosts="the one compute host is mapped",
                                       instances="the one instance is mapped")
    table = cloud.run("status")
    assert "all 1 " not in table.stdout and "the one compute host is mapped" in table.stdout


def test_unmapped_hosts_and_instances_warn_until_mapped(cloud):
    cell1 = setup_cells(cloud)
    add_compute_nodes(cloud.cell_url, ["host-a", "host-b", "host-c"])
    map_hosts(cloud.api_url, cell1, ["host-a"])
    mapped = add_instances(cloud.cell_url, 2)
    map_instances(cloud.api_url, cell1, mapped)
    live = add_instances(cloud.cell_url, 1)
    deleted = add_instances(cloud.cell_url, 1, deleted=True)  # map_instances maps these too
    add_instances(cloud.cell_url, 1, hidden=True)
    in_cell0 = add_instances(cell0_url(cloud), 1)

    result, payload = status_json(cloud)

    assert result.exit_code == 1
    label = f"cell 'cell1' ({cell1})"
    assert rows(payload) == [
        *plain_rows()[:5],
        ("Host mappings", "warning",
         f"2 compute hosts have no host mapping (2 in {label}, e.g. host-b, host-c). "
         "Run command 'cellctl discover_hosts' and then retry."),
        ("Instance mappings", "warning",
         f"3 instances have no instance mapping (1 in {CELL0_LABEL}, e.g. {in_cell0[0]}; "
         f"2 in {label}, e.g. {live[0]}, {deleted[0]}). Run command 'cellctl map_instances "
         f"--cell_uuid {CELL0}' and then retry. Run command 'cellctl map_instances "
         f"--cell_uuid {cell1}' and then retry."),
        *plain_rows()[7:],
    ]

    map_hosts(cloud.api_url, cell1, ["host-b", "host-c"])
    map_instances(cloud.api_url, cell1, live + deleted)
    map_instances(cloud.api_url, CELL0, in_cell0)
    result, payload = status_json(cloud)
    assert result.exit_code == 0
    assert rows(payload)[5:7] == [
        ("Host mappings", "success", "all 3 compute hosts are mapped"),
        ("Instance mappings", "success", "all 5 instances are mapped"),
    ]


def test_unmapped_instances_are_counted_across_batches(sqlite_cloud, monkeypatch):
    """Keyset pagination: with tiny batches every page is read and examples come first."""
    from cellctl import paging

    monkeypatch.setattr(paging, "BATCH_SIZE", 3)
    cell1 = setup_cells(sqlite_cloud)
    uuids = add_instances(sqlite_cloud.cell_url, 10)
    map_instances(sqlite_cloud.api_url, cell1, uuids[::2])
    hosts = [f"h{i:02}" for i in range(7)]
    add_compute_nodes(sqlite_cloud.cell_url, hosts)
    map_hosts(sqlite_cloud.api_url, cell1, hosts[:4])

    result, payload = status_json(sqlite_cloud)

    assert result.exit_code == 1
    details = {c["check"]: c["details"] for c in payload["checks"]}
    assert details["Host mappings"].startswith(
        f"3 compute hosts have no host mapping (3 in cell 'cell1' ({cell1}), e.g. h04, h05, h06)")
    assert details["Instance mappings"].startswith(
        f"5 instances have no instance mapping (5 in cell 'cell1' ({cell1}), "
        f"e.g. {uuids[1]}, {uuids[3]}, {uuids[5]})")


def test_nothing_mapped_fails(cloud_no_pg):
    cloud = cloud_no_pg
    cloud.ok("api_db", "sync")

    result, payload = status_json(cloud)

    assert result.exit_code == 2
    assert rows(payload) == [
        ("Cell0 mapping", "failure", "No cell0 mapping found. Run command 'cellctl map_cell0' "
         "(or 'cellctl simple_cell_setup') and then retry."),
        ("Cell mappings", "failure", "There needs to be at least one cell besides cell0. Run "
         "command 'cellctl create_cell' (or 'cellctl simple_cell_setup') and then retry."),
        ("Cell databases", "success", "no cell is mapped"),
        ("API database schema", "success", "at head (api_0001)"),
        ("Cell database schemas", "success", "no cell database read"),
        ("Host mappings", "success", "No host mappings or compute nodes were found. Remember to "
         "run command 'cellctl discover_hosts' when new compute hosts are deployed."),
        ("Instance mappings", "success", "no instances found"),
        ("Cell conductors", "success", "no regular cell database read"),
        ("Compute service versions", "success", "no nova-compute services to check"),
    ]


def test_api_database_without_schema_fails(cloud):
    result, payload = status_json(cloud)

    assert result.exit_code == 2
    hint = "Run command 'cellctl api_db sync' and then retry."
    if cloud.factory.backend == "sqlite":  # the file is not even there
        expected = f"The API database {cloud.api_url} does not exist. {hint}"
    else:
        expected = f"API database: no schema. {hint}"
    assert rows(payload) == [("API database schema", "failure", expected)]


def test_unreachable_api_database_is_one_line_exit_2(sqlite_cloud):
    url = f"mysql+pymysql://root:{SECRET}@127.0.0.1:1/api"
    result = sqlite_cloud.run("status", env={"CELLCTL_API_DATABASE_CONNECTION": url})

    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("ERROR: Cannot use API database mysql+pymysql://root:****@")
    assert_no_secret(result, SECRET)


def test_cell_schema_missing_or_behind_fails(cloud_no_pg):
    cloud = cloud_no_pg
    cell1 = setup_cells(cloud)
    empty = cloud.factory.new("empty")
    if cloud.factory.backend == "sqlite":
        cloud.execute(empty, "CREATE TABLE placeholder (id INTEGER)")
    empty_cell = create_cell(cloud, "empty", empty, "memory:///x")
    cloud.execute(cloud.cell_url, "UPDATE cellctl_cell_version SET version_num = 'cell_0000'")

    result, payload = status_json(cloud)

    assert result.exit_code == 2
    assert rows(payload)[4] == (
        "Cell database schemas", "failure",
        f"cell 'cell1' ({cell1}): schema at cell_0000, head is cell_0001; "
        f"cell 'empty' ({empty_cell}): no schema. Run command 'cellctl db sync --all-cells' "
        "and then retry.")
    assert rows(payload)[2] == ("Cell databases", "success", "all 3 cell databases answered")


def test_nova_owned_cell_schema_behind_points_at_nova_manage(sqlite_cloud):
    cell1 = setup_cells(sqlite_cloud)
    sqlite_cloud.execute(sqlite_cloud.cell_url, "DROP TABLE cellctl_cell_version")
    sqlite_cloud.execute(sqlite_cloud.cell_url,
                         "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    sqlite_cloud.execute(sqlite_cloud.cell_url,
                         "INSERT INTO alembic_version VALUES ('d60bddf7a903')")

    result, payload = status_json(sqlite_cloud)

    assert result.exit_code == 2
    assert rows(payload)[4] == (
        "Cell database schemas", "failure",
        f"cell 'cell1' ({cell1}): Nova's schema at d60bddf7a903, head is ab450ba04102. "
        "Run command 'nova-manage db sync' and then retry.")


# --- a dead cell ---------------------------------------------------------------


def dead_url(backend, port):
    if backend == "postgresql":
        return f"postgresql+psycopg://nova:{SECRET}@127.0.0.1:{port}/nova"
    return f"mysql+pymysql://nova:{SECRET}@127.0.0.1:{port}/nova"


def test_cell_on_closed_port_is_reported_and_others_still_checked(cloud, backend):
    cell1 = setup_cells(cloud)
    add_compute_nodes(cloud.cell_url, ["host-a"])  # unmapped: must still be found
    with closed_port() as port:
        dead = create_cell(cloud, "dead", dead_url(backend, port), "memory:///dead")

        result, payload = status_json(cloud)
        table = cloud.run("status")

    assert result.exit_code == 2
    assert payload["unreachable_cells"] == [dead]
    assert rows(payload) == [
        ("Cell0 mapping", "success", "cell0 is mapped"),
        ("Cell mappings", "success", "2 cells besides cell0"),
        ("Cell databases", "failure",
         f"1 of 3 cell databases unreachable: cell 'dead' ({dead}). Check the cell's "
         "database_connection ('cellctl list_cells') and its server, then retry."),
        ("API database schema", "success", "at head (api_0001)"),
        ("Cell database schemas", "success",
         "2 cell databases at head (1 unreachable, not checked)"),
        ("Host mappings", "warning",
         f"1 compute host has no host mapping (1 in cell 'cell1' ({cell1}), e.g. host-a). "
         "Run command 'cellctl discover_hosts' and then retry."),
        ("Instance mappings", "success", "no instances found"),
        ("Cell conductors", "success",
         "every cell has a live nova-conductor (1 cell, db driver) (1 unreachable, not checked)"),
        ("Compute service versions", "success",
         "no nova-compute services to check (1 unreachable, not checked)"),
    ]
    warnings = [json.loads(line) for line in result.stderr.splitlines()]
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["message"].startswith(f"Cannot use database of cell 'dead' ({dead}) ")
    assert warnings[-1]["unreachable_cells"] == [dead]

    assert table.exit_code == 2
    assert f"WARNING: Cannot use database of cell 'dead' ({dead})" in table.stderr
    assert "Failure" in table.stdout
    assert_no_secret(result, SECRET)
    assert_no_secret(table, SECRET)


def test_cell_whose_server_was_killed(cloud, throwaway_mariadb):
    cell1 = setup_cells(cloud)
    populate_healthy(cloud, cell1)
    remote_url = throwaway_mariadb.create_database(f"cellctl_t_{uuid.uuid4().hex[:10]}")
    remote = create_cell(cloud, "remote", remote_url, "memory:///remote")
    cloud.ok("db", "sync", "--all-cells")
    add_live_conductor(remote_url)
    add_compute_nodes(remote_url, ["remote-host"])
    map_hosts(cloud.api_url, remote, ["remote-host"])

    result, payload = status_json(cloud)
    assert result.exit_code == 0, result.stderr
    assert rows(payload) == plain_rows(cells=2, databases=3,
                                       hosts="all 3 compute hosts are mapped")

    throwaway_mariadb.kill()
    result, payload = status_json(cloud)

    assert result.exit_code == 2
    assert payload["unreachable_cells"] == [remote]
    assert rows(payload)[2] == (
        "Cell databases", "failure",
        f"1 of 3 cell databases unreachable: cell 'remote' ({remote}). Check the cell's "
        "database_connection ('cellctl list_cells') and its server, then retry.")
    assert rows(payload)[4:7] == [
        ("Cell database schemas", "success",
         "2 cell databases at head (1 unreachable, not checked)"),
        ("Host mappings", "success", "all 2 compute hosts are mapped"),
        ("Instance mappings", "success", "all 3 instances are mapped"),
    ]
    assert "Connection refused" in result.stderr
    assert_no_secret(result, PASSWORD)


class KillServerOnFirstBatch:
    """A progress reporter that crashes the server once status has read one batch of a cell:
    the only way to stop a server at a known point in the middle of a run."""

    def __init__(self, server, cell_name):
        self.server, self.cell_name, self.watching, self.killed = server, cell_name, False, False

    def start(self, label, total):
        self.watching = f"'{self.cell_name}'" in label

    def advance(self, count):
        if self.watching and not self.killed:
            self.server.kill()
            self.killed = True

    def finish(self):
        pass


def test_cell_server_killed_while_status_reads_it(sqlite_cloud, throwaway_mariadb, monkeypatch):
    import cellctl.cli.status

    cell1 = setup_cells(sqlite_cloud)
    populate_healthy(sqlite_cloud, cell1)
    remote_url = throwaway_mariadb.create_database(f"cellctl_t_{uuid.uuid4().hex[:10]}")
    remote = create_cell(sqlite_cloud, "remote", remote_url, "memory:///remote")
    sync_cell_database(sqlite_cloud, remote_url)
    add_instances(remote_url, 2500)  # three batches: the server dies after the first
    killer = KillServerOnFirstBatch(throwaway_mariadb, "remote")
    monkeypatch.setattr(cellctl.cli.status, "progress_for", lambda fmt=None: killer)

    result, payload = status_json(sqlite_cloud)

    assert killer.killed
    assert result.exit_code == 2
    assert payload["unreachable_cells"] == [remote]
    assert rows(payload)[2:7] == [
        ("Cell databases", "failure",
         f"1 of 3 cell databases unreachable: cell 'remote' ({remote}). Check the cell's "
         "database_connection ('cellctl list_cells') and its server, then retry."),
        ("API database schema", "success", "at head (api_0001)"),
        ("Cell database schemas", "success",
         "2 cell databases at head (1 unreachable, not checked)"),
        ("Host mappings", "success", "all 2 compute hosts are mapped"),
        ("Instance mappings", "success", "all 3 instances are mapped"),
    ]
    warning = json.loads(result.stderr.splitlines()[0])
    assert warning["message"].startswith(f"Cannot use database of cell 'remote' ({remote}) "
                                         "mysql+pymysql://root:****@")
    assert_no_secret(result, PASSWORD)


def test_frozen_cell_server_costs_only_the_timeout(sqlite_cloud, throwaway_mariadb):
    """A stopped (SIGSTOP) server accepts connections and never answers."""
    setup_cells(sqlite_cloud)
    name = f"cellctl_t_{uuid.uuid4().hex[:10]}"
    remote_url = throwaway_mariadb.create_database(name)
    remote = create_cell(sqlite_cloud, "frozen", remote_url, "memory:///frozen")
    sqlite_cloud.ok("db", "sync", "--all-cells")
    throwaway_mariadb.freeze()

    for args in ([], ["--check-connectivity"]):
        started = time.monotonic()
        result, payload = status_json(sqlite_cloud, "--timeout", "1", *args)
        elapsed = time.monotonic() - started

        assert result.exit_code == 2
        assert elapsed < 4, elapsed
        assert payload["unreachable_cells"] == [remote]
        assert rows(payload)[2][1] == "failure"
        assert (f"Cannot use database of cell 'frozen' ({remote}) "
                f"mysql+pymysql://root:****@127.0.0.1:{throwaway_mariadb.port}/{name}: "
                "no answer within 1 s") in result.stderr
        assert_no_secret(result, PASSWORD)


# --- --check-connectivity --------------------------------------------------------


@pytest.fixture
def rabbitmq():
    from kombu import Connection

    from cellctl.urls import kombu_urls

    try:
        with Connection(kombu_urls(RABBITMQ_URL)[0], connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=0)
    except Exception as exc:
        unavailable("RabbitMQ", exc)
    return RABBITMQ_URL


def connectivity_rows(payload):
    return [(c["check"], c["result"], re.sub(r"\d+(\.\d+)? ms", "N ms", c["details"]))
            for c in payload["checks"][9:]]


def test_connectivity_all_reachable(cloud, rabbitmq):
    cell1 = setup_cells(cloud, transport=rabbitmq)
    populate_healthy(cloud, cell1)

    result, payload = status_json(cloud, "--check-connectivity")

    assert result.exit_code == 0, result.stderr
    assert rows(payload)[:9] == plain_rows()
    from cellctl.urls import mask

    assert connectivity_rows(payload) == [
        (f"Database of {CELL0_LABEL}", "success",
         f"reachable in N ms ({mask(cell0_url(cloud))})"),
        (f"Queue of {CELL0_LABEL}", "success",
         "not checked: cell0 has no message queue (none:///)"),
        (f"Database of cell 'cell1' ({cell1})", "success",
         f"reachable in N ms ({mask(cloud.cell_url)})"),
        (f"Queue of cell 'cell1' ({cell1})", "success", f"reachable in N ms ({mask(rabbitmq)})"),
    ]
    assert [(p["target"], p["result"]) for p in payload["connectivity"]] == [
        ("database", "success"), ("queue", "skipped"), ("database", "success"),
        ("queue", "success")]
    assert all(p["latency_ms"] > 0 for p in payload["connectivity"] if p["result"] == "success")


def test_connectivity_failures_are_reported_and_masked(cloud_no_pg, rabbitmq):
    """Wrong RabbitMQ password, a refused queue port, a closed database port, none:///."""
    cloud = cloud_no_pg
    cell1 = setup_cells(cloud, transport=rabbitmq.replace("guest:guest", "guest:wr0ng-pw"))
    with closed_port() as port:
        bad_db = create_cell(cloud, "bad-db", dead_url("mysql", port), rabbitmq)
        no_queue_db, bad_mq_db = cloud.factory.new("nq"), cloud.factory.new("bm")
        no_queue = create_cell(cloud, "no-queue", no_queue_db, "none:///nq")
        bad_mq = create_cell(cloud, "bad-mq", bad_mq_db,
                             f"rabbit://guest:{SECRET}@127.0.0.1:{port}/")
        sync_cell_database(cloud, no_queue_db)
        sync_cell_database(cloud, bad_mq_db)

        result, payload = status_json(cloud, "--check-connectivity", "--timeout", "2")
        table = cloud.run("status", "--check-connectivity", "--timeout", "2")

    assert result.exit_code == 2
    assert payload["unreachable_cells"] == [bad_db]
    checks = {c["check"]: (c["result"], c["details"]) for c in payload["checks"]}
    assert checks[f"Queue of cell 'cell1' ({cell1})"] == (
        "failure", "Cannot connect to queue rabbit://guest:****@127.0.0.1:5672/: (0, 0): (403) "
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details "
        "see the broker logfile.")
    assert checks[f"Database of cell 'bad-db' ({bad_db})"][0] == "failure"
    assert checks[f"Database of cell 'bad-db' ({bad_db})"][1].startswith(
        f"Cannot use database of cell 'bad-db' ({bad_db}) mysql+pymysql://nova:****@127.0.0.1:"
        f"{port}/nova: Can't connect to MySQL server")
    assert checks[f"Queue of cell 'bad-db' ({bad_db})"][0] == "success"
    assert checks[f"Queue of cell 'no-queue' ({no_queue})"] == (
        "failure", f"cell 'no-queue' ({no_queue}) has no message queue (none:///nq)")
    assert checks[f"Queue of cell 'bad-mq' ({bad_mq})"] == (
        "failure", f"Cannot connect to queue rabbit://guest:****@127.0.0.1:{port}/: "
        "[Errno 111] Connection refused")
    assert table.exit_code == 2
    assert "ACCESS_REFUSED" in table.stdout
    for output in (result, table):
        assert_no_secret(output, SECRET, "wr0ng-pw")


def test_connectivity_black_holes_are_bounded_by_the_timeout(sqlite_cloud, rabbitmq):
    """Unroutable-like hosts (SYNs dropped) and a server that never speaks, all at once."""
    setup_cells(sqlite_cloud)
    mq_hole_db = sqlite_cloud.factory.new("mq")
    sync_cell_database(sqlite_cloud, mq_hole_db)
    with black_hole() as hole, silent_port() as silent:
        cells = {
            "mysql-hole": (dead_url("mysql", hole), "memory:///a"),
            "pg-hole": (dead_url("postgresql", hole), "memory:///b"),
            "mysql-silent": (dead_url("mysql", silent), "memory:///c"),
            "mq-hole": (mq_hole_db, f"rabbit://guest:{SECRET}@127.0.0.1:{hole}/"),
        }
        uuids = {name: create_cell(sqlite_cloud, name, db, mq) for name, (db, mq) in cells.items()}

        started = time.monotonic()
        result, payload = status_json(sqlite_cloud, "--check-connectivity", "--timeout", "1")
        elapsed = time.monotonic() - started

    assert result.exit_code == 2
    assert elapsed < 4, elapsed  # the timeout, the deadline's grace, and the checks themselves
    assert sorted(payload["unreachable_cells"]) == sorted(
        uuids[n] for n in ("mysql-hole", "pg-hole", "mysql-silent"))
    checks = {c["check"]: (c["result"], c["details"]) for c in payload["checks"]}
    timed_out = re.compile(r".*(\(timed out\)|timeout expired|no answer within 1 s)$")
    for name in ("mysql-hole", "pg-hole", "mysql-silent"):
        outcome, details = checks[f"Database of cell '{name}' ({uuids[name]})"]
        assert outcome == "failure"
        assert timed_out.match(details), details
    assert checks[f"Database of cell 'mysql-silent' ({uuids['mysql-silent']})"][1].endswith(
        "no answer within 1 s")  # PyMySQL itself would wait forever for the greeting
    outcome, details = checks[f"Queue of cell 'mq-hole' ({uuids['mq-hole']})"]
    assert (outcome, details) == (
        "failure", f"Cannot connect to queue rabbit://guest:****@127.0.0.1:{hole}/: timed out")
    assert_no_secret(result, SECRET)


def test_multi_host_queue_with_one_host_down_warns(sqlite_cloud, rabbitmq):
    with closed_port() as port:
        two_hosts = f"rabbit://guest:guest@127.0.0.1:5672,guest:{SECRET}@127.0.0.1:{port}/"
        cell1 = setup_cells(sqlite_cloud, transport=two_hosts)

        result, payload = status_json(sqlite_cloud, "--check-connectivity")

    assert result.exit_code == 1
    assert payload["checks"][-1] == {
        "check": f"Queue of cell 'cell1' ({cell1})", "result": "warning",
        "details": f"1 of 2 hosts unreachable: Cannot connect to queue "
                   f"rabbit://guest:****@127.0.0.1:{port}/: [Errno 111] Connection refused"}
    assert [p["url"] for p in payload["connectivity"] if p["target"] == "queue"][1:] == [
        "rabbit://guest:****@127.0.0.1:5672/", f"rabbit://guest:****@127.0.0.1:{port}/"]
    assert_no_secret(result, SECRET)


def test_bad_timeout_is_usage_error(sqlite_cloud):
    result = sqlite_cloud.run("status", "--timeout", "0")
    assert result.exit_code == 2
    assert "--timeout" in result.stderr
    assert MYSQL_SERVER not in result.stderr


# --- service checks across cells, judged by the configured driver ---------------


def test_cell_conductors_are_judged_in_every_regular_cell(cloud_no_pg):
    import datetime

    from cellctl.clock import utcnow

    cloud = cloud_no_pg
    setup_cells(cloud)  # cell1: a live conductor
    stale_url, none_url, forced_url = (cloud.factory.new(n) for n in ("stale", "none", "forced"))
    stale = create_cell(cloud, "stale", stale_url, "memory:///s")
    none = create_cell(cloud, "none", none_url, "memory:///n")
    forced = create_cell(cloud, "forced", forced_url, "memory:///f")
    cloud.ok("db", "sync", "--all-cells")
    add_services(stale_url, ["c-stale"], "nova-conductor",
                 last_seen_up=utcnow() - datetime.timedelta(seconds=61))
    add_services(none_url, ["sched-1"], "nova-scheduler", last_seen_up=utcnow())
    add_services(forced_url, ["c-forced"], "nova-conductor", last_seen_up=utcnow(),
                 forced_down=True)

    result, payload = status_json(cloud)

    assert result.exit_code == 1
    details = {c["check"]: (c["result"], c["details"]) for c in payload["checks"]}
    outcome, text = details["Cell conductors"]
    assert outcome == "warning"
    assert text.startswith(
        f"no live nova-conductor in cell 'stale' ({stale}), cell 'none' ({none}), "
        f"cell 'forced' ({forced}): its compute services cannot report or take work")
    assert "cell1" not in text and "cell0" not in text

    # a heartbeat brings the stale one back
    cloud.execute(stale_url, "UPDATE services SET last_seen_up = :t", {"t": utcnow()})
    _, payload = status_json(cloud)
    text = {c["check"]: c["details"] for c in payload["checks"]}["Cell conductors"]
    assert "stale" not in text and "'none'" in text


def test_compute_service_versions_as_nova_status_counts_them(cloud_no_pg):
    cloud = cloud_no_pg
    setup_cells(cloud)
    other_url = cloud.factory.new("other")
    other = create_cell(cloud, "other", other_url, "memory:///o")
    cloud.ok("db", "sync", "--all-cells")
    add_live_conductor(other_url)

    def check():
        result, payload = status_json(cloud)
        found = {c["check"]: (c["result"], c["details"]) for c in payload["checks"]}
        return result.exit_code, found["Compute service versions"]

    assert check() == (0, ("success", "no nova-compute services to check"))

    add_services(cloud.cell_url, ["new-1"], version=74)
    add_services(other_url, ["new-2"], version=72)
    add_services(other_url, ["forced-old"], version=60, forced_down=True)  # not counted
    add_services(other_url, ["gone-old"], version=50)
    cloud.execute(other_url, "UPDATE services SET deleted = id WHERE host = 'gone-old'")
    add_services(other_url, ["conductor-old"], "nova-conductor", version=40)  # not a compute
    assert check() == (0, ("success",
                           "oldest nova-compute service version 72 (at least 72)"))

    add_services(other_url, ["old-1"], version=71)  # whatever its liveness: never reported
    code, (outcome, text) = check()
    assert (code, outcome) == (2, "failure")
    assert text.startswith(
        f"1 nova-compute service older than version 72, the oldest Nova 34 supports: "
        f"old-1 (version 71, cell 'other' ({other}))")


@pytest.mark.memcached
def test_conductors_under_mc_read_memcached(sqlite_cloud, memcached_server, tmp_path):
    from pymemcache.client.base import Client

    from cellctl.liveness.memcache import cache_key, heartbeat_value

    cloud = sqlite_cloud
    setup_cells(cloud)  # its conductor has a fresh last_seen_up: irrelevant under mc
    host = f"conductor-{uuid.uuid4().hex[:8]}"
    cloud.execute(cloud.cell_url, "UPDATE services SET host = :h", {"h": host})
    conf = tmp_path / "nova.conf"
    conf.write_text("[DEFAULT]\nservicegroup_driver = mc\n[cache]\nenabled = true\n"
                    f"backend = dogpile.cache.memcached\nmemcache_servers = {memcached_server}\n")

    def conductors(config):
        result = cloud.run("--format", "json", "--config-file", str(config), "status")
        payload = json.loads(result.stdout)
        found = {c["check"]: (c["result"], c["details"]) for c in payload["checks"]}
        return found["Cell conductors"], result

    (outcome, text), _ = conductors(conf)
    assert outcome == "warning" and "no live nova-conductor in cell 'cell1'" in text

    client = Client(memcached_server, default_noreply=False)
    client.set(cache_key("conductor", host), heartbeat_value(0), flags=1)
    client.close()
    (outcome, text), _ = conductors(conf)
    assert (outcome, text) == ("success",
                               "every cell has a live nova-conductor (1 cell, mc driver)")

    with closed_port() as port:
        dead = tmp_path / "dead.conf"
        dead.write_text(conf.read_text().replace(memcached_server, f"127.0.0.1:{port}"))
        started = time.monotonic()
        (outcome, text), result = conductors(dead)
    assert time.monotonic() - started < 15
    assert outcome == "warning"
    assert "is unknown: memcached 127.0.0.1:" in text
    warnings = [json.loads(line)["message"] for line in result.stderr.splitlines()]
    assert any(w.startswith(f"memcached 127.0.0.1:{port}") for w in warnings), warnings
