"""discover_hosts and map_instances on a real 3-node MariaDB Galera cluster.

The cluster is the test session's own (tests/galera.py): three ``mariadbd``
nodes with the ``galera-4`` provider on loopback ports. The commands run as
real child processes (``python -m cellctl``), through different nodes at once,
through a node that is SIGKILLed mid-run, under strict write-set limits and
through a TCP proxy standing in for a virtual IP that fails over. After each
scenario the data must be exact (one mapping per host and instance, every
node flagged, no marker left) and the three nodes identical (CHECKSUM TABLE),
and no run may print a traceback or more than one error line.

The cell's ``database_connection`` is stored as a Nova template
(``...@127.0.0.1:{port}/...``), so a run through node 2 also writes its cell
through node 2, as every process in a deployment writes through its own
``[database] connection``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pymysql
import pytest
import sqlalchemy as sa
from conftest import Cloud
from galera import GaleraCluster, via
from hostsupport import add_hosts
from tcp_proxy import tcp_proxy

from cellctl.tables.rows import insert_fake_instances

pytestmark = [pytest.mark.galera, pytest.mark.xdist_group("galera")]

MARKER = "INSTANCE_MIGRATION_MARKER"
HOST_TABLES = ["host_mappings"]
INSTANCE_TABLES = ["instance_mappings"]


# --- helpers -------------------------------------------------------------------------


def cell_template(url: str) -> str:
    """The cell URL as a Nova template: each reader fills in its own port."""
    return sa.engine.make_url(url).render_as_string(hide_password=False).replace(
        f":{sa.engine.make_url(url).port}/", ":{port}/")


def new_cloud(factory: Any, tmp_path, *, instances: int = 0, hosts: int = 0) -> tuple[Cloud, str]:
    """Synced API and cell databases on the cluster, one cell (templated URL); its UUID."""
    cloud = Cloud.new(factory, tmp_path)
    cloud.synced()
    result = cloud.ok("create_cell", "--name", "cell1", "--transport-url", "memory:///",
                      "--database_connection", cell_template(cloud.cell_url), "--verbose")
    cell = result.stdout.strip().splitlines()[-1]
    if instances:
        engine = sa.create_engine(cloud.cell_url)
        try:
            insert_fake_instances(engine, instances, host="compute1")
        finally:
            engine.dispose()
    if hosts:
        add_hosts(cloud.cell_url, [f"compute-{i:06d}" for i in range(hosts)])
    return cloud, cell


def start(cloud: Cloud, port: int, *args: str) -> subprocess.Popen[str]:
    """``cellctl`` as a child process whose databases are reached on ``port``."""
    env = {**os.environ, **cloud.env,
           "CELLCTL_API_DATABASE_CONNECTION": via(cloud.api_url, port),
           "CELLCTL_DATABASE_CONNECTION": via(cloud.cell_url, port)}
    return subprocess.Popen([sys.executable, "-m", "cellctl", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(procs: list[subprocess.Popen[str]], timeout: float = 300) -> list[tuple[int, str, str]]:
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        outputs.append((proc.returncode, out, err))
    return outputs


# The line a mapping command ends with, on stderr, saying what it did (cellctl.cli.summary).
SUMMARY_LINES = ("discover_hosts: ", "map_instances: ")


def assert_clean(err: str) -> None:
    """No traceback, no driver clean-up noise: at most one error or warning line, besides
    the summary line of a run that went on (a node killed while discover_hosts reads the
    cell is that cell's one warning, and the run then says what it mapped)."""
    assert "Traceback" not in err, err
    assert "Exception ignored" not in err, err
    lines = [line for line in err.splitlines()
             if line.strip() and not line.startswith(SUMMARY_LINES)]
    assert len(lines) <= 1, err


def query(url: str, statement: str, params: Any = None) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET SESSION wsrep_sync_wait = 1")  # see every commit
            return list(conn.execute(sa.text(statement), params or {}))
    finally:
        engine.dispose()


def instance_state(url: str) -> tuple[list[str], set[str], int]:
    """(marker rows, mapped instance UUIDs, number of mapping rows) of the API database."""
    rows = query(url, "SELECT instance_uuid, project_id FROM instance_mappings")
    marker = [u for u, p in rows if p == MARKER]
    mapped = [u for u, p in rows if p != MARKER]
    return marker, set(mapped), len(mapped)


def all_instances(url: str) -> set[str]:
    return {u for (u,) in query(url, "SELECT uuid FROM instances")}


def host_state(api_url: str, cell_url: str) -> tuple[int, int, set[Any]]:
    """(host mappings, distinct hosts mapped, the set of compute nodes' ``mapped`` flags)."""
    (rows, hosts), = query(api_url, "SELECT COUNT(*), COUNT(DISTINCT host) FROM host_mappings")
    flags = {f for (f,) in query(cell_url, "SELECT DISTINCT mapped FROM compute_nodes")}
    return rows, hosts, flags


def nodes_agree(galera: GaleraCluster, cloud: Cloud, nodes=(1, 2, 3)) -> None:
    """Every node holds exactly the same API and cell tables."""
    api = sa.engine.make_url(cloud.api_url).database
    cell = sa.engine.make_url(cloud.cell_url).database
    sums = [(galera.checksums(n, api, ["host_mappings", "instance_mappings", "cell_mappings"]),
             galera.checksums(n, cell, ["compute_nodes", "instances"])) for n in nodes]
    assert all(s == sums[0] for s in sums), sums


def wait_until(predicate, proc: subprocess.Popen[str], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {what}: {proc.communicate()}")
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def marker_moved(url: str) -> bool:
    try:
        return bool(query(url, "SELECT 1 FROM instance_mappings WHERE project_id = :m",
                          {"m": MARKER}))
    except sa.exc.OperationalError:
        return False


def some_hosts_mapped(url: str) -> bool:
    try:
        return bool(query(url, "SELECT 1 FROM host_mappings LIMIT 1"))
    except sa.exc.OperationalError:
        return False


def port(galera: GaleraCluster, number: int) -> int:
    return galera.node(number).port


# --- concurrency through different nodes -------------------------------------------

DISCOVER_HOSTS = 20_000
DISCOVER_TRIALS = 3


def test_concurrent_discover_hosts_through_two_nodes(galera, galera_factory, tmp_path):
    """4 runs at once, two through node 1 and two through node 2: each exits 0."""
    cloud, _cell = new_cloud(galera_factory, tmp_path, hosts=DISCOVER_HOSTS)
    for trial in range(DISCOVER_TRIALS):
        if trial:  # the same hosts, unmapped again
            cloud.execute(cloud.api_url, "DELETE FROM host_mappings")
            cloud.execute(cloud.cell_url, "UPDATE compute_nodes SET mapped = 0")
        procs = [start(cloud, port(galera, n), "discover_hosts", "--verbose")
                 for n in (1, 2, 1, 2)]
        outputs = finish(procs)

        for _code, _out, err in outputs:
            assert_clean(err)
        assert [code for code, _, _ in outputs] == [0, 0, 0, 0], (
            trial, [(code, err) for code, _, err in outputs])
        rows, hosts, flags = host_state(cloud.api_url, cloud.cell_url)
        assert rows == hosts == DISCOVER_HOSTS
        assert flags == {1}
        # Every mapping was created by exactly one of the four runs.
        assert sum(out.count("Creating host mapping") for _, out, _ in outputs) == DISCOVER_HOSTS
        nodes_agree(galera, cloud)


MAP_INSTANCES = 30_000
MAP_TRIALS = 2


def test_concurrent_map_instances_through_two_nodes(galera, galera_factory, tmp_path):
    """2 runs at once through node 1 and node 2: both exit 0, each instance mapped once."""
    for trial in range(MAP_TRIALS):
        cloud, cell = new_cloud(galera_factory, tmp_path / str(trial), instances=MAP_INSTANCES)
        procs = [start(cloud, port(galera, n), "--format", "json", "map_instances",
                       "--cell_uuid", cell) for n in (1, 2)]
        outputs = finish(procs)

        for _code, _out, err in outputs:
            assert_clean(err)
        assert [code for code, _, _ in outputs] == [0, 0], (trial, outputs)
        assert sum(json.loads(out)["mapped"] for _, out, _ in outputs) == MAP_INSTANCES
        marker, mapped, rows = instance_state(cloud.api_url)
        assert marker == []
        assert mapped == all_instances(cloud.cell_url)
        assert rows == MAP_INSTANCES
        nodes_agree(galera, cloud)


# --- node loss ---------------------------------------------------------------------

KILL_INSTANCES = 45_000  # 20,000-instance batches: the kill lands after the first
KILL_HOSTS = 30_000


def test_node_killed_mid_map_instances_then_rerun_elsewhere_and_rejoin(
        galera, galera_factory, tmp_path):
    """SIGKILL the node a run writes through; a rerun through another node completes exactly;
    the killed node rejoins and holds the same data as the others."""
    cloud, cell = new_cloud(galera_factory, tmp_path, instances=KILL_INSTANCES)
    through_3 = via(cloud.api_url, port(galera, 3))
    proc = start(cloud, port(galera, 2), "--format", "json", "map_instances",
                 "--cell_uuid", cell)
    wait_until(lambda: marker_moved(through_3), proc, "a first batch committed")
    galera.kill(2)
    code, out, err = finish([proc])[0]
    assert code == 255, (code, out, err)  # the documented code for an unexpected failure
    assert_clean(err)
    assert any(lost in err for lost in ("Lost connection", "gone away", "Can't connect")), err

    # What the killed run committed is consistent: the marker and the mappings agree.
    galera.wait_cluster_size(3, 2)
    marker, mapped, rows = instance_state(through_3)
    assert len(marker) == 1 and 0 < rows < KILL_INSTANCES

    code, out, err = finish([start(cloud, port(galera, 3), "--format", "json",
                                   "map_instances", "--cell_uuid", cell)])[0]
    assert code == 0, (out, err)
    assert json.loads(out)["mapped"] == KILL_INSTANCES - rows
    marker, mapped, rows = instance_state(through_3)
    assert marker == []
    assert mapped == all_instances(via(cloud.cell_url, port(galera, 3)))
    assert rows == KILL_INSTANCES

    galera.start_node(2)  # rejoins (IST) and must agree with the others
    galera.wait_cluster_size(2, 3)
    nodes_agree(galera, cloud)


def test_node_killed_mid_discover_hosts_then_rerun_elsewhere(galera, galera_factory, tmp_path):
    cloud, _cell = new_cloud(galera_factory, tmp_path, hosts=KILL_HOSTS)
    through_3 = via(cloud.api_url, port(galera, 3))
    proc = start(cloud, port(galera, 1), "discover_hosts")
    wait_until(lambda: some_hosts_mapped(through_3), proc, "a first batch committed")
    galera.kill(1)
    code, out, err = finish([proc])[0]
    assert code == 1, (code, out, err)
    assert_clean(err)

    galera.wait_cluster_size(3, 2)
    code, out, err = finish([start(cloud, port(galera, 3), "discover_hosts")])[0]
    assert code == 0, (out, err)
    rows, hosts, flags = host_state(through_3, via(cloud.cell_url, port(galera, 3)))
    assert rows == hosts == KILL_HOSTS
    assert flags == {1}
    galera.start_node(1)
    galera.wait_cluster_size(1, 3)
    nodes_agree(galera, cloud)


def test_virtual_ip_moves_to_another_node(galera, galera_factory, tmp_path):
    """Through a TCP proxy (the virtual IP): node 1 dies, the VIP moves to node 2 mid-run,
    the run fails with one line, and the rerun through the same address completes exactly."""
    cloud, cell = new_cloud(galera_factory, tmp_path, instances=KILL_INSTANCES, hosts=5000)
    with tcp_proxy(port(galera, 1)) as vip:
        through_2 = via(cloud.api_url, port(galera, 2))
        proc = start(cloud, vip.port, "--format", "json", "map_instances", "--cell_uuid", cell)
        wait_until(lambda: marker_moved(through_2), proc, "a first batch committed")
        galera.kill(1)
        vip.move(port(galera, 2))
        code, out, err = finish([proc])[0]
        assert code == 255, (code, out, err)
        assert_clean(err)

        galera.wait_cluster_size(2, 2)
        runs = finish([start(cloud, vip.port, "--format", "json", "map_instances",
                             "--cell_uuid", cell),
                       start(cloud, vip.port, "discover_hosts")])
        for code, out, err in runs:
            assert code == 0, (out, err)
            assert_clean(err)
    marker, mapped, rows = instance_state(through_2)
    assert marker == []
    assert mapped == all_instances(via(cloud.cell_url, port(galera, 2)))
    assert rows == KILL_INSTANCES
    rows, hosts, flags = host_state(through_2, via(cloud.cell_url, port(galera, 2)))
    assert rows == hosts == 5000 and flags == {1}
    galera.start_node(1)
    galera.wait_cluster_size(1, 3)
    nodes_agree(galera, cloud)


# --- write-set limits --------------------------------------------------------------

LIMIT_INSTANCES = 15_000  # more than wsrep_max_ws_rows in all
LIMIT_HOSTS = 12_000
STRICT_LIMITS = {"wsrep_max_ws_rows": 10_000, "wsrep_max_ws_size": 1024 * 1024}


@contextlib.contextmanager
def strict_limits(galera, limits=STRICT_LIMITS):
    """The stricter limits on every node (new sessions get them), the defaults back after."""
    defaults = {name: galera.global_value(1, name) for name in limits}
    for name, value in limits.items():
        galera.set_global(name, value)
    try:
        yield
    finally:
        for name, value in defaults.items():
            galera.set_global(name, value)


def test_strict_write_set_limits(galera, galera_factory, tmp_path):
    """map_instances and discover_hosts fit their transactions below the cluster's limits."""
    cloud, cell = new_cloud(galera_factory, tmp_path, instances=LIMIT_INSTANCES,
                            hosts=LIMIT_HOSTS)
    with strict_limits(galera):
        check_limits_bite(galera)
        runs = finish([start(cloud, port(galera, 2), "--format", "json", "map_instances",
                             "--cell_uuid", cell),
                       start(cloud, port(galera, 3), "discover_hosts")])
    for code, out, err in runs:
        assert_clean(err)
        assert code == 0, (out, err)
    marker, mapped, rows = instance_state(cloud.api_url)
    assert marker == [] and rows == LIMIT_INSTANCES
    assert mapped == all_instances(cloud.cell_url)
    rows, hosts, flags = host_state(cloud.api_url, cloud.cell_url)
    assert rows == hosts == LIMIT_HOSTS and flags == {1}
    nodes_agree(galera, cloud)


def test_a_batch_the_server_refuses_is_split(galera, galera_factory, tmp_path, monkeypatch):
    """When the size estimate is wrong, the refused transaction is halved until it fits,
    the marker moving with each part: still exact, exit 0."""
    import cellctl.mappings.cell_instances as ops

    monkeypatch.setattr(ops, "MAPPING_ROW_BYTES", 1)  # 20,000 rows look like 20 kB
    cloud, cell = new_cloud(galera_factory, tmp_path, instances=LIMIT_INSTANCES)
    with strict_limits(galera, {"wsrep_max_ws_size": 1024 * 1024}):
        result = cloud.run("--format", "json", "map_instances", "--cell_uuid", cell)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["mapped"] == LIMIT_INSTANCES
    marker, mapped, rows = instance_state(cloud.api_url)
    assert marker == [] and rows == LIMIT_INSTANCES
    assert mapped == all_instances(cloud.cell_url)


def check_limits_bite(galera):
    """The limits are real: 20,000 rows, or 2 MB, in one transaction are refused."""
    db = galera.new_database("limits")
    try:
        galera.sql(2, f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(250))")
        with pytest.raises(pymysql.MySQLError, match="wsrep_max_ws_rows exceeded"):
            galera.sql(2, "INSERT INTO t SELECT seq, 'x' FROM seq_1_to_20000", database=db)
        with pytest.raises(pymysql.MySQLError, match="Maximum writeset size exceeded"):
            galera.sql(3, "INSERT INTO t SELECT seq, REPEAT('y', 240) FROM seq_1_to_9000",
                       database=db)
        assert galera.sql(1, f"SELECT COUNT(*) FROM {db}.t") == [(0,)]
    finally:
        galera.drop_database(db)


# --- Nova's database user: all privileges on its own databases, nothing global ---------


def grant_nova_user(admin_url: str, databases: list[str]) -> tuple[str, str]:
    """A user as kolla-ansible / openstack-ansible create Nova's: GRANT ALL on its databases."""
    user, password = f"nova_{uuid.uuid4().hex[:8]}", "n0va-Secret"
    engine = sa.create_engine(admin_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
            for name in databases:
                conn.exec_driver_sql(f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'127.0.0.1'")
    finally:
        engine.dispose()
    return user, password


def drop_user(admin_url: str, user: str) -> None:
    engine = sa.create_engine(admin_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
    finally:
        engine.dispose()


def as_user(url: str, user: str, password: str) -> str:
    return sa.engine.make_url(url).set(username=user, password=password).render_as_string(
        hide_password=False)


@pytest.fixture(params=["galera", "plain"])
def any_server_factory(request):
    """The Galera cluster (through node 2) and the shared plain MariaDB."""
    if request.param == "galera":
        factory = request.getfixturevalue("galera_factory")
        factory.node = 2
        return factory
    return request.getfixturevalue("mysql_factory")


@pytest.mark.mysql
def test_as_novas_database_user(any_server_factory, tmp_path):
    """Everything from schema sync to discover_hosts and map_instances, with Nova's grants."""
    factory = any_server_factory
    api, cell_db = factory.new("api"), factory.new("cell1", with_cell0=True)
    names = [sa.engine.make_url(u).database for u in (api, cell_db)]
    names.append(names[1] + "_cell0")
    admin = sa.engine.make_url(api).set(database="").render_as_string(hide_password=False)
    user, password = grant_nova_user(admin, names)
    try:
        cloud = Cloud(factory, tmp_path, as_user(api, user, password),
                      as_user(cell_db, user, password))
        cloud.synced()
        cloud.ok("map_cell0")
        created = cloud.ok("create_cell", "--name", "cell1", "--transport-url", "memory:///",
                           "--verbose")
        cell = created.stdout.strip().splitlines()[-1]
        add_hosts(cell_db, [f"compute-{i:05d}" for i in range(3000)])  # three batches
        engine = sa.create_engine(cell_db)
        try:
            insert_fake_instances(engine, 12_000)
        finally:
            engine.dispose()
        port_ = sa.engine.make_url(cloud.api_url).port
        runs = finish([start(cloud, port_, "discover_hosts"),
                       start(cloud, port_, "--format", "json", "map_instances",
                             "--cell_uuid", cell)])
        for code, out, err in runs:
            assert_clean(err)
            assert code == 0, (out, err)
        assert password not in "".join(out + err for _, out, err in runs)
        rows, hosts, flags = host_state(api, cell_db)
        assert rows == hosts == 3000 and flags == {1}
        marker, mapped, rows = instance_state(api)
        assert marker == [] and rows == 12_000 and mapped == all_instances(cell_db)
        cloud.ok("list_cells")
        cloud.ok("list_hosts")
    finally:
        drop_user(admin, user)
