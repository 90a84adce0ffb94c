"""``cellctl ironic move``: plan, checks, apply, rebalance, dead cells, kill and re-run,
on SQLite, MariaDB and PostgreSQL.

The services and nodes are what Nova writes, made with ``service register
--hypervisor-type ironic`` and ``dev add-instances --node``; the expected
ring owners come from the real ``tooz.hashring.HashRing``.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from hostsupport import kill_cell, setup_cells
from tooz.hashring import HashRing as ToozRing

from cellctl.clock import utcnow

DOWN_TIME = 3600  # service_down_time of these tests: nothing goes down while they run


# --- building the fleet ------------------------------------------------------------


def register(cloud, host, nodes=0, *, url=None):
    args = ["service", "register", "--host", host, "--hypervisor-type", "ironic",
            "--nodes", str(nodes)]
    if url:
        args += ["--database_connection", url]
    cloud.ok(*args)


def set_services(cloud, url, hosts, **values):
    assignments = ", ".join(f"{column} = :{column}" for column in values)
    for host in hosts:
        cloud.execute(url, f"UPDATE services SET {assignments} WHERE host = :host",
                      {**values, "host": host})


def nodes_of(cloud, host, url=None):
    rows = cloud.rows(url or cloud.cell_url, "compute_nodes")
    return [r["hypervisor_hostname"] for r in rows
            if r["host"] == host and r["deleted"] == 0 and r["hypervisor_type"] == "ironic"]


def add_instance(cloud, host, node, url=None):
    env = {"CELLCTL_DATABASE_CONNECTION": url} if url else None
    done = cloud.run("dev", "add-instances", "--count", "1", "--host", host, "--node", node,
                     env=env)
    assert done.exit_code == 0, done.stderr
    return [r["uuid"] for r in cloud.rows(url or cloud.cell_url, "instances")
            if r["node"] == node][-1]


def service_ids(cloud, url=None):
    return {r["host"]: r["id"] for r in cloud.rows(url or cloud.cell_url, "services")}


def make_fleet(cloud, url=None, *, source_nodes=6):
    """Source ``bm-src`` (up, not yet forced down) and ``bm-a``, ``bm-b``, ``bm-c`` up,
    ``bm-off`` disabled, ``bm-dead`` down, ``bm-forced`` forced down: each with nodes."""
    url = url or cloud.cell_url
    counts = {"bm-src": source_nodes, "bm-a": 2, "bm-b": 2, "bm-c": 2, "bm-off": 1,
              "bm-dead": 1, "bm-forced": 1}
    for host, count in counts.items():
        register(cloud, host, count, url=url)
    now = utcnow()
    long_ago = now - datetime.timedelta(seconds=3 * DOWN_TIME)
    set_services(cloud, url, list(counts), created_at=long_ago, last_seen_up=now)
    set_services(cloud, url, ["bm-dead"], last_seen_up=long_ago)
    set_services(cloud, url, ["bm-off"], disabled=True)
    set_services(cloud, url, ["bm-forced"], forced_down=True)
    return nodes_of(cloud, "bm-src", url)


@pytest.fixture
def fleet(any_cloud):
    cloud = any_cloud
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = str(DOWN_TIME)
    (cloud.cell1,) = setup_cells(cloud)
    cloud.nodes = make_fleet(cloud)
    return cloud


def move(cloud, *args, code=0):
    done = cloud.run("--format", "json", "ironic", "move", *args)
    assert done.exit_code == code, (done.stdout, done.stderr)
    return {row["node"]: row for row in json.loads(done.stdout)} if done.stdout else {}


def cell_state(cloud, url=None):
    """Every row that a move may change, as it is."""
    url = url or cloud.cell_url
    return {table: cloud.rows(url, table) for table in ("services", "compute_nodes",
                                                        "instances")}


def where(cloud, node, url=None):
    """(host, service_id) of the node's live rows, and the hosts of its live instances."""
    url = url or cloud.cell_url
    rows = [(r["host"], r["service_id"]) for r in cloud.rows(url, "compute_nodes")
            if r["hypervisor_hostname"] == node and r["deleted"] == 0]
    hosts = [r["host"] for r in cloud.rows(url, "instances")
             if r["node"] == node and r["deleted"] == 0]
    return rows, hosts


def tooz_owner(members, node):
    return next(iter(ToozRing(members, partitions=32).get_nodes(node.encode("utf-8"))), None)


# --- the plan and the move ---------------------------------------------------------


def test_plan_refused_until_forced_down_then_apply_and_rerun(fleet):
    cloud, nodes = fleet, fleet.nodes
    instance = add_instance(cloud, "bm-src", nodes[0])
    before = cell_state(cloud)

    refused = move(cloud, "--from", "bm-src", "--to", "bm-a", code=2)
    assert set(refused) == set(nodes)
    assert {r["status"] for r in refused.values()} == {"refused"}
    assert {tuple(r["failed_checks"]) for r in refused.values()} == {("source forced down",)}
    assert move(cloud, "--from", "bm-src", "--to", "bm-a", "--apply", code=2)
    assert cell_state(cloud) == before  # refused: nothing written

    set_services(cloud, cloud.cell_url, ["bm-src"], forced_down=True)
    before = cell_state(cloud)
    plan = move(cloud, "--from", "bm-src", "--to", "bm-a")
    assert {r["status"] for r in plan.values()} == {"ready"}
    assert {(r["source"], r["destination"], r["cell_name"]) for r in plan.values()} == {
        ("bm-src", "bm-a", "cell1")}
    assert plan[nodes[0]]["instance_uuid"] == instance
    assert all(all(c["passed"] for c in r["checks"]) for r in plan.values())
    assert {c["check"] for c in plan[nodes[0]]["checks"]} == {
        "source forced down", "destination exists", "destination not forced down",
        "destination up", "at most one instance"}
    assert cell_state(cloud) == before  # a plan writes nothing

    table = cloud.run("ironic", "move", "--from", "bm-src", "--to", "bm-a")
    assert table.exit_code == 0 and "--apply" in table.stdout
    header = [c.strip() for c in table.stdout.splitlines()[2].split("|")[1:-1]]
    assert header == ["Node", "Cell Name", "From", "To", "Instance", "Status", "Failed Checks"]

    done = move(cloud, "--from", "bm-src", "--to", "bm-a", "--apply")
    assert {r["status"] for r in done.values()} == {"moved"}
    a_id = service_ids(cloud)["bm-a"]
    for node in nodes:
        assert where(cloud, node) == ([("bm-a", a_id)], ["bm-a"] if node == nodes[0] else [])
    after = cell_state(cloud)
    assert after["services"] == before["services"]
    assert move(cloud, "--from", "bm-src", "--to", "bm-a", "--apply", code=3) == {}
    assert cell_state(cloud) == after
    # A named node already there is said so, and there is still nothing to move.
    again = move(cloud, "--from", "bm-src", "--to", "bm-a", "--node", nodes[1], code=3)
    assert again[nodes[1]]["status"] == "already moved"


def test_refusals_per_node_and_the_others_move(fleet):
    cloud, nodes = fleet, fleet.nodes
    set_services(cloud, cloud.cell_url, ["bm-src"], forced_down=True)
    add_instance(cloud, "bm-src", nodes[0])
    add_instance(cloud, "bm-src", nodes[0])  # two instances on one node
    before = cell_state(cloud)
    for destination, check in (("bm-forced", "destination not forced down"),
                               ("bm-dead", "destination up"),
                               ("bm-nowhere", "destination exists")):
        rows = move(cloud, "--from", "bm-src", "--to", destination, code=2)
        assert {tuple(r["failed_checks"]) for n, r in rows.items() if n != nodes[0]} == {
            (check,)}, destination
        assert cell_state(cloud) == before
    rows = move(cloud, "--from", "bm-src", "--to", "bm-b", "--apply", code=2)
    assert rows[nodes[0]]["failed_checks"] == ["at most one instance"]
    assert rows[nodes[0]]["status"] == "refused"
    assert {rows[n]["status"] for n in nodes[1:]} == {"moved"}
    assert where(cloud, nodes[0]) == ([("bm-src", service_ids(cloud)["bm-src"])],
                                      ["bm-src", "bm-src"])
    assert {where(cloud, n)[0][0][0] for n in nodes[1:]} == {"bm-b"}


def test_only_named_nodes_and_a_node_the_source_does_not_report(fleet):
    cloud, nodes = fleet, fleet.nodes
    set_services(cloud, cloud.cell_url, ["bm-src"], forced_down=True)
    other = nodes_of(cloud, "bm-c")[0]
    missing = "0b7c1b42-36b5-4d5b-a2c7-4b8a7d0b6a11"
    rows = move(cloud, "--from", "bm-src", "--to", "bm-a", "--node", nodes[2],
                "--node", nodes[3].upper(), "--node", other, "--node", missing, "--apply",
                code=2)
    assert {n: r["status"] for n, r in rows.items()} == {
        nodes[2]: "moved", nodes[3]: "moved", other: "refused", missing: "refused"}
    assert rows[other]["failed_checks"] == ["reported by source"]
    assert rows[missing]["cell_uuid"] is None
    assert sorted(nodes_of(cloud, "bm-src")) == sorted(set(nodes) - {nodes[2], nodes[3]})


def test_rebalance_as_the_ring_without_the_source(fleet):
    cloud, nodes = fleet, fleet.nodes
    add_instance(cloud, "bm-src", nodes[1])
    set_services(cloud, cloud.cell_url, ["bm-src"], forced_down=True)
    # Up, enabled, not forced down, with an Ironic node: bm-a, bm-b, bm-c (not bm-off,
    # bm-dead, bm-forced, and not the source).
    members = {"bm-a", "bm-b", "bm-c"}
    plan = move(cloud, "--from", "bm-src", "--rebalance")
    assert {n: r["destination"] for n, r in plan.items()} == {
        n: tooz_owner(members, n) for n in nodes}
    assert {r["status"] for r in plan.values()} == {"ready"}
    done = move(cloud, "--from", "bm-src", "--rebalance", "--apply")
    ids = service_ids(cloud)
    for node in nodes:
        owner = tooz_owner(members, node)
        assert done[node]["status"] == "moved"
        assert where(cloud, node) == ([(owner, ids[owner])], [owner] if node == nodes[1] else [])
    assert move(cloud, "--from", "bm-src", "--rebalance", "--apply", code=3) == {}
    named = move(cloud, "--from", "bm-src", "--rebalance", "--node", nodes[0], code=3)
    assert named[nodes[0]]["status"] == "already moved"


def test_rebalance_with_nobody_left_is_refused(any_cloud):
    cloud = any_cloud
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = str(DOWN_TIME)
    setup_cells(cloud)
    register(cloud, "bm-src", 2)
    register(cloud, "bm-off", 1)
    set_services(cloud, cloud.cell_url, ["bm-src", "bm-off"], last_seen_up=utcnow())
    set_services(cloud, cloud.cell_url, ["bm-src"], forced_down=True)
    set_services(cloud, cloud.cell_url, ["bm-off"], disabled=True)
    rows = move(cloud, "--from", "bm-src", "--rebalance", "--apply", code=2)
    assert len(rows) == 2
    assert {(r["destination"], tuple(r["failed_checks"])) for r in rows.values()} == {
        (None, ("destination exists",))}


def test_bad_input_is_one_line_exit_1_and_nothing_written(fleet):
    cloud = fleet
    set_services(cloud, cloud.cell_url, ["bm-src"], forced_down=True)
    before = cell_state(cloud)
    for args in ([], ["--from", " ", "--to", "bm-a"], ["--from", "bm-src"],
                 ["--from", "bm-src", "--to", "bm-a", "--rebalance"],
                 ["--from", "bm-src", "--to", "BM-SRC"],
                 ["--from", "bm-src", "--to", ""],
                 ["--from", "bm-src", "--to", "bm-a", "--node", "not-a-uuid"],
                 ["--from", "bm-src", "--to", "bm-a", "--cell", "nocell"],
                 ["--from", "bm-src", "--to", "bm-a", "--cell",
                  "6f1d3c1e-5b1a-4c55-9a53-0f3e9d6c2b11"]):
        done = cloud.run("ironic", "move", *args, "--apply")
        assert done.exit_code == 1, (args, done.stdout, done.stderr)
        assert done.stdout == "" and len(done.stderr.splitlines()) == 1, args
        assert done.stderr.startswith("ERROR: "), args
    assert cell_state(cloud) == before
    by_name = move(cloud, "--from", "bm-src", "--to", "bm-a", "--cell", "cell1")
    assert set(by_name) == set(cloud.nodes)


def test_nothing_to_move(fleet):
    done = fleet.run("--format", "json", "ironic", "move", "--from", "bm-nowhere", "--to", "bm-a")
    assert done.exit_code == 3 and json.loads(done.stdout) == []
    assert "Nothing to move" in done.stderr


def test_dead_cell_is_reported_and_the_others_move(any_cloud):
    cloud = any_cloud
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = str(DOWN_TIME)
    cell1, cell2 = setup_cells(cloud, extra_cells=1)
    nodes = make_fleet(cloud)
    set_services(cloud, cloud.cell_url, ["bm-src"], forced_down=True)
    kill_cell(cloud, cell2)
    done = cloud.run("--format", "json", "ironic", "move", "--from", "bm-src", "--to", "bm-a",
                     "--apply")
    assert done.exit_code == 4, (done.stdout, done.stderr)
    assert "secretpw" not in done.stdout + done.stderr
    warnings = [json.loads(line) for line in done.stderr.splitlines()]
    assert [w["unreachable_cells"] for w in warnings if "unreachable_cells" in w] == [[cell2]]
    rows = json.loads(done.stdout)
    assert {(r["cell_uuid"], r["status"]) for r in rows} == {(cell1, "moved")}
    assert nodes_of(cloud, "bm-a") and not nodes_of(cloud, "bm-src")
    assert set(nodes) <= set(nodes_of(cloud, "bm-a"))


def test_each_cell_moves_its_own_nodes(any_cloud):
    cloud = any_cloud
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = str(DOWN_TIME)
    _, cell2 = setup_cells(cloud, extra_cells=1)
    url2 = cloud.cell_urls[1]
    first = make_fleet(cloud, source_nodes=2)
    second = make_fleet(cloud, url2, source_nodes=3)
    for url in (cloud.cell_url, url2):
        set_services(cloud, url, ["bm-src"], forced_down=True)
    set_services(cloud, url2, ["bm-a"], forced_down=True)  # cell2's bm-a cannot take them
    rows = move(cloud, "--from", "bm-src", "--to", "bm-a", "--apply", code=2)
    assert {rows[n]["status"] for n in first} == {"moved"}
    assert {rows[n]["cell_uuid"] for n in second} == {cell2}
    assert {tuple(rows[n]["failed_checks"]) for n in second} == {
        ("destination not forced down",)}
    only2 = move(cloud, "--from", "bm-src", "--to", "bm-b", "--cell", "cell2", "--apply")
    assert set(only2) == set(second)
    assert {r["status"] for r in only2.values()} == {"moved"}
    assert set(second) <= set(nodes_of(cloud, "bm-b", url2))
    assert not nodes_of(cloud, "bm-src", url2)
    assert set(first) <= set(nodes_of(cloud, "bm-a"))  # cell1's stay where they went


# --- killed half-way, then run again -----------------------------------------------------


@pytest.fixture
def mysql_cloud(mysql_factory, make_cloud):
    return make_cloud(mysql_factory)


def test_killed_mid_apply_then_rerun_finishes(mysql_cloud):
    cloud = mysql_cloud
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = str(DOWN_TIME)
    setup_cells(cloud)
    count = 200  # each node its own transaction, as nova-manage moves them
    nodes = make_fleet(cloud, source_nodes=count)
    set_services(cloud, cloud.cell_url, ["bm-src"], forced_down=True)
    with_instance = nodes[::20]
    for node in with_instance:
        add_instance(cloud, "bm-src", node)
    engine = sa.create_engine(cloud.cell_url)
    moved_sql = sa.text("SELECT COUNT(*) FROM compute_nodes WHERE host = 'bm-b' "
                        "AND hypervisor_type = 'ironic' AND deleted = 0")
    try:
        with engine.connect() as conn:
            base = conn.execute(moved_sql).scalar_one()
        process = subprocess.Popen(
            [sys.executable, "-m", "cellctl", "--format", "json", "ironic", "move", "--from",
             "bm-src", "--to", "bm-b", "--apply"], env={**os.environ, **cloud.env},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        moved = 0
        while time.monotonic() < deadline and process.poll() is None:
            with engine.connect() as conn:
                moved = conn.execute(moved_sql).scalar_one() - base
            if moved >= 20:
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        assert process.returncode == -signal.SIGKILL, "the run ended before it was killed"
    finally:
        engine.dispose()
    left = set(nodes_of(cloud, "bm-src"))
    assert 0 < len(left) < count, "killed before or after every node moved"
    b_id = service_ids(cloud)["bm-b"]
    src_id = service_ids(cloud)["bm-src"]
    for node in with_instance:  # each node moved whole, with its instance, or not at all
        expected = ("bm-src", src_id) if node in left else ("bm-b", b_id)
        assert where(cloud, node) == ([expected], [expected[0]])
    rows = move(cloud, "--from", "bm-src", "--to", "bm-b", "--apply")
    assert set(rows) == left and {r["status"] for r in rows.values()} == {"moved"}
    assert not nodes_of(cloud, "bm-src")
    for node in nodes:
        assert where(cloud, node) == ([("bm-b", b_id)],
                                      ["bm-b"] if node in with_instance else [])


def test_two_runs_at_once_take_turns_and_agree(cloud_no_pg):
    cloud = cloud_no_pg
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = str(DOWN_TIME)
    setup_cells(cloud)
    nodes = make_fleet(cloud, source_nodes=150)
    set_services(cloud, cloud.cell_url, ["bm-src"], forced_down=True)
    for node in nodes[:3]:
        add_instance(cloud, "bm-src", node)
    argv = [sys.executable, "-m", "cellctl", "--format", "json", "ironic", "move", "--from",
            "bm-src", "--rebalance", "--apply"]
    runs = [subprocess.Popen(argv, env={**os.environ, **cloud.env}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]  # read: the pipes may fill
    outcomes = [(run.returncode, *output) for run, output in zip(runs, outputs, strict=True)]
    statuses: dict[str, list[str]] = {}
    for code, out, err in outcomes:
        assert code in (0, 3), err  # 3: the other run had moved every node first
        for row in json.loads(out):
            statuses.setdefault(row["node"], []).append(row["status"])
    # Each node moved by exactly one run; the other found it moved already.
    assert {n: sorted(s).count("moved") for n, s in statuses.items()} == dict.fromkeys(nodes, 1)
    assert {s for listed in statuses.values() for s in listed} <= {"moved", "already moved"}
    members = {"bm-a", "bm-b", "bm-c"}
    ids = service_ids(cloud)
    for node in nodes:
        owner = tooz_owner(members, node)
        assert where(cloud, node) == ([(owner, ids[owner])], [owner] if node in nodes[:3] else [])
