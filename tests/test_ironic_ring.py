"""``cellctl ironic ring``: owners and states of Ironic nodes, on SQLite, MariaDB and PostgreSQL.

The expected owners come from the real ``tooz.hashring.HashRing`` over the ring
members Nova's driver would pick, not from cellctl's ring. The test data is
what Nova writes, made with ``service register --hypervisor-type ironic`` and
``dev add-instances --node``.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import sqlalchemy as sa
from hostsupport import DEAD_CELL_URL, UNKNOWN_CELL, kill_cell, setup_cells
from servers import PASSWORD, black_hole, closed_port
from tooz.hashring import HashRing as ToozRing

from cellctl.clock import utcnow

DOWN_TIME = 3600  # service_down_time of these tests: nothing goes down while they run
KEYS = {"node", "cell_uuid", "cell_name", "reported_by", "owner", "state", "instance_uuid"}


# --- building the fleet ------------------------------------------------------------


def register(cloud, host, nodes=0, *extra, url=None):
    args = ["service", "register", "--host", host, "--hypervisor-type", "ironic",
            "--nodes", str(nodes), *extra]
    if url:
        args += ["--database_connection", url]
    return cloud.ok(*args)


def set_services(cloud, url, hosts, **values):
    assignments = ", ".join(f"{column} = :{column}" for column in values)
    for host in hosts:
        cloud.execute(url, f"UPDATE services SET {assignments} WHERE host = :host",
                      {**values, "host": host})


def nodes_of(cloud, host, url=None):
    rows = cloud.rows(url or cloud.cell_url, "compute_nodes", "hypervisor_hostname")
    return [r["hypervisor_hostname"] for r in rows
            if r["host"] == host and r["deleted"] == 0 and r["hypervisor_type"] == "ironic"]


def add_instance(cloud, host, node, *extra, url=None):
    env = {"CELLCTL_DATABASE_CONNECTION": url} if url else None
    done = cloud.run("dev", "add-instances", "--count", "1", "--host", host, "--node", node,
                     *extra, env=env)
    assert done.exit_code == 0, done.stderr
    rows = cloud.rows(url or cloud.cell_url, "instances")
    return [r["uuid"] for r in rows if r["node"] == node][-1]


def make_fleet(cloud, url=None, prefix=""):
    """One cell's Ironic services in every situation the ring cares about.

    Returns what the test needs to know: the ring members Nova would use, each
    host's spelling, and the special nodes.
    """
    url = url or cloud.cell_url
    p = prefix
    hosts = {"a": f"{p}Ironic-A", "b": f"{p}ironic-b", "c": f"{p}ironic-c",
             "d": f"{p}ironic-d", "e": f"{p}ironic-e", "ghost": f"{p}ghost"}
    counts = {"a": 30, "b": 30, "c": 10, "d": 5, "e": 5, "ghost": 1}
    for key, host in hosts.items():
        register(cloud, host, counts[key], url=url)
    cloud.ok("service", "register", "--host", f"{p}kvm1", "--database_connection", url)
    now = utcnow()
    long_ago = now - datetime.timedelta(seconds=3 * DOWN_TIME)
    set_services(cloud, url, [*hosts.values(), f"{p}kvm1"], created_at=long_ago)
    set_services(cloud, url, [hosts[k] for k in ("a", "b", "d", "e", "ghost")] + [f"{p}kvm1"],
                 last_seen_up=now)
    set_services(cloud, url, [hosts["c"]], last_seen_up=long_ago)  # down
    set_services(cloud, url, [hosts["d"]], disabled=True)  # up but out of the ring
    set_services(cloud, url, [hosts["e"]], forced_down=True)  # down, whatever it reports
    # ghost's only Ironic row is soft-deleted: Nova's join still counts it a member.
    cloud.execute(url, "UPDATE compute_nodes SET deleted = id WHERE host = :h",
                  {"h": hosts["ghost"]})

    a_nodes, b_nodes, c_nodes = (nodes_of(cloud, hosts[k], url) for k in "abc")
    duplicated = a_nodes[0]
    register(cloud, hosts["b"], 0, "--node", duplicated, url=url)
    dead_twice = c_nodes[1]  # two rows, both reporters down: nobody manages it
    register(cloud, hosts["e"], 0, "--node", dead_twice, url=url)
    orphan_with_instance = c_nodes[0]
    moved_instance = b_nodes[0]  # runs on A (moved by hand), still reported by b
    deleted_instance = a_nodes[1]  # a deleted instance pins nothing
    instances = {
        orphan_with_instance: add_instance(cloud, hosts["c"], orphan_with_instance, url=url),
        moved_instance: add_instance(cloud, hosts["a"], moved_instance, url=url),
    }
    add_instance(cloud, hosts["b"], deleted_instance, "--deleted", "1", url=url)
    return {
        "hosts": hosts,
        "members": {hosts[k].lower() for k in ("a", "b", "ghost")},
        "spelling": {h.lower(): h for h in hosts.values()},
        "instances": instances,
        "instance_hosts": {orphan_with_instance: hosts["c"], moved_instance: hosts["a"]},
        "duplicated": duplicated, "dead_twice": dead_twice,
        "orphan_with_instance": orphan_with_instance,
        "moved_instance": moved_instance, "deleted_instance": deleted_instance,
        "live": {hosts[k] for k in ("a", "b", "d", "ghost")},
    }


@pytest.fixture
def fleet(any_cloud):
    cloud = any_cloud
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = str(DOWN_TIME)
    (cloud.cell1,) = setup_cells(cloud)
    cloud.fleet = make_fleet(cloud)
    return cloud


def ring(cloud, *args, code=0):
    done = cloud.run("ironic", "ring", "--format", "json", *args)
    assert done.exit_code == code, (done.stdout, done.stderr)
    return json.loads(done.stdout) if code == 0 else done


def tooz_owner(members, node):
    owners = ToozRing(members, partitions=32).get_nodes(node.encode("utf-8"))
    return next(iter(owners), None)


def expected_owner(fleet, node, members=None):
    """Nova's owner: the live instance's host, else tooz's ring over the members."""
    if node in fleet["instance_hosts"]:
        return fleet["instance_hosts"][node]
    member = tooz_owner(fleet["members"] if members is None else members, node)
    return None if member is None else fleet["spelling"][member]


def expected_state(fleet, reporters, owner):
    live = [r in fleet["live"] for r in reporters]
    if not any(live):
        return "orphaned"
    if len(reporters) > 1:
        return "duplicated"
    return "in place" if owner and reporters[0].lower() == owner.lower() else "moving"


# --- the listing --------------------------------------------------------------------


def test_every_node_with_reporters_owner_and_state_as_nova(fleet):
    f = fleet.fleet
    h = f["hosts"]
    rows = ring(fleet)
    by_node = {row["node"]: row for row in rows}
    assert len(by_node) == len(rows) == 30 + 30 + 10 + 5 + 5  # ghost's row is deleted, kvm1's fake
    assert all(set(row) == KEYS for row in rows)
    assert {row["cell_uuid"] for row in rows} == {fleet.cell1}
    assert {row["cell_name"] for row in rows} == {"cell1"}
    for node, row in by_node.items():
        owner = expected_owner(f, node)
        assert row["owner"] == owner, node
        assert row["state"] == expected_state(f, row["reported_by"], owner), node
        assert row["instance_uuid"] == f["instances"].get(node)
    assert sorted(by_node[f["duplicated"]]["reported_by"]) == sorted([h["a"], h["b"]])
    assert by_node[f["duplicated"]]["state"] == "duplicated"
    assert sorted(by_node[f["dead_twice"]]["reported_by"]) == sorted([h["c"], h["e"]])
    assert by_node[f["dead_twice"]]["state"] == "orphaned"
    orphan = by_node[f["orphan_with_instance"]]
    assert (orphan["owner"], orphan["state"]) == (h["c"], "orphaned")
    moved = by_node[f["moved_instance"]]
    assert (moved["reported_by"], moved["owner"], moved["state"]) == ([h["b"]], h["a"], "moving")
    assert by_node[f["deleted_instance"]]["instance_uuid"] is None
    states = {row["state"] for row in rows}
    assert states == {"in place", "moving", "orphaned", "duplicated"}
    # Down (c), forced down (e): orphaned; disabled but up (d): moving, never owner.
    for key, state in (("c", "orphaned"), ("e", "orphaned"), ("d", "moving")):  # alone
        assert {r["state"] for r in rows if r["reported_by"] == [h[key]]} == {state}, key
    owners = {row["owner"] for row in rows}
    assert owners == {h["a"], h["b"], h["ghost"], h["c"]}  # c only through its instance
    # Both parts of Nova's rule show: A owns some of its nodes, and some of b's.
    assert any(r["state"] == "in place" and r["owner"] == h["a"] for r in rows)
    assert any(r["reported_by"] == [h["b"]] and r["owner"] == h["a"] for r in rows)


def test_table_filters_and_cell(fleet):
    f = fleet.fleet
    h = f["hosts"]
    table = fleet.run("ironic", "ring")
    assert table.exit_code == 0, table.stderr
    header = [c.strip() for c in table.stdout.splitlines()[1].split("|")[1:-1]]
    assert header == ["Node", "Cell Name", "Reported By", "Owner", "State"]
    line = next(x for x in table.stdout.splitlines() if f["duplicated"] in x)
    assert f"{h['a']}, {h['b']}" in line or f"{h['b']}, {h['a']}" in line

    everything = ring(fleet)
    mine = ring(fleet, "--host", h["a"].upper())
    assert mine == [r for r in everything
                    if h["a"] in r["reported_by"] or r["owner"] == h["a"]]
    assert mine and len(mine) < len(everything)
    for state in ("in place", "moving", "orphaned", "duplicated"):
        assert ring(fleet, "--state", state) == [r for r in everything if r["state"] == state]
    assert ring(fleet, "--state", "IN_PLACE") == ring(fleet, "--state", "in place")
    assert ring(fleet, "--cell_uuid", fleet.cell1) == everything
    assert fleet.run("cell_v2", "ironic", "ring").exit_code == 2  # cellctl's own: no cell_v2
    csv = fleet.run("ironic", "ring", "--format", "csv", "--state", "duplicated")
    assert csv.stdout.splitlines()[0] == ",".join(
        ["node", "cell_name", "reported_by", "owner", "state"])


def test_summary_per_service(fleet):
    f = fleet.fleet
    h = f["hosts"]
    rows = ring(fleet, "--summary")
    assert [set(r) for r in rows] == [{"host", "cell_uuid", "cell_name", "state",
                                       "nodes_reported", "nodes_owned"}] * len(rows)
    summary = {r["host"]: r for r in rows}
    assert list(summary) == sorted(summary)
    assert {host: r["state"] for host, r in summary.items()} == {
        h["a"]: "up", h["b"]: "up", h["c"]: "down", h["d"]: "disabled",
        h["e"]: "forced down", h["ghost"]: "up"}  # kvm1 is no Ironic service
    assert {host: r["nodes_reported"] for host, r in summary.items()} == {
        h["a"]: 30, h["b"]: 31, h["c"]: 10, h["d"]: 5, h["e"]: 6, h["ghost"]: 0}
    nodes = ring(fleet)
    for host, row in summary.items():
        assert row["nodes_owned"] == sum(1 for n in nodes if n["owner"] == host), host
    assert summary[h["ghost"]]["nodes_owned"] > 0  # a member with no live node still owns
    assert ring(fleet, "--summary", "--host", h["d"]) == [summary[h["d"]]]


def test_what_if_without_and_with(fleet):
    f = fleet.fleet
    h = f["hosts"]
    everything = ring(fleet)
    members_after = f["members"] - {h["a"].lower()}
    moved = ring(fleet, "--without", h["a"])
    assert moved, "taking A out moves its nodes"
    for row in moved:
        assert row["owner_after"] == expected_owner(f, row["node"], members_after)
        assert row["owner_after"] != row["owner"]
        assert row["node"] not in f["instance_hosts"]  # a node with an instance never moves
    listing = ring(fleet, "--without", h["a"], "--all")
    assert len(listing) == len(everything)
    assert [r for r in listing if r["owner_after"] != r["owner"]] == moved
    assert {r["node"] for r in moved} == {r["node"] for r in everything
                                          if r["owner"] == h["a"]
                                          and r["node"] not in f["instance_hosts"]}

    summary = {r["host"]: r for r in ring(fleet, "--summary", "--without", h["a"])}
    assert summary[h["a"]]["nodes_owned_after"] == 1  # only the node of its instance
    assert sum(r["nodes_owned_after"] for r in summary.values()) == sum(
        r["nodes_owned"] for r in summary.values())

    # The down service c joins again, and a brand-new host joins the only cell.
    joined = f["members"] | {h["c"].lower(), "ironic-new"}
    after = ring(fleet, "--with", h["c"], "--with", "ironic-new", "--all")
    f["spelling"]["ironic-new"] = "ironic-new"
    assert [r["owner_after"] for r in after] == [expected_owner(f, r["node"], joined)
                                                 for r in after]
    new = {r["host"]: r for r in ring(fleet, "--summary", "--with", "ironic-new")}
    assert new["ironic-new"]["state"] == "new"
    assert new["ironic-new"]["nodes_owned_after"] > 0
    assert new["ironic-new"]["nodes_owned"] == 0
    table = fleet.run("ironic", "ring", "--without", h["b"])
    assert "Owner After" in table.stdout.splitlines()[1]


def test_bad_input_is_one_line_and_1(fleet):
    f = fleet.fleet
    for args in (["--cell_uuid", "nope"], ["--cell_uuid", UNKNOWN_CELL], ["--state", "lost"],
                 ["--without", "nobody"], ["--with", "x", "--without", "X"], ["--host", " "]):
        done = ring(fleet, *args, code=1)
        assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
        assert done.stdout == "", args
        assert "Traceback" not in done.stderr
    assert "not found" in ring(fleet, "--cell_uuid", UNKNOWN_CELL, code=1).stderr
    # With two cells, a host that is no service anywhere cannot be placed.
    url = fleet.factory.new("cell2")
    synced = fleet.run("db", "sync", env={"CELLCTL_DATABASE_CONNECTION": url})
    assert synced.exit_code == 0, synced.stderr
    fleet.ok("create_cell", "--name", "cell2", "--database_connection", url,
             "--transport-url", "memory:///cell2")
    done = ring(fleet, "--with", "ironic-new", code=1)
    assert "--cell_uuid" in done.stderr
    assert ring(fleet, "--with", "ironic-new", "--cell_uuid", fleet.cell1) != []
    assert ring(fleet, "--with", f["hosts"]["c"])  # c is a service of cell1: no question


# --- several cells, paging ------------------------------------------------------------


def test_several_cells_and_keyset_pages_of_any_size(fleet, monkeypatch):
    import cellctl.ops.ironic_ring as ironic_ring_module
    from cellctl.db import Databases
    from cellctl.settings import resolve

    url = fleet.factory.new("cell2")
    synced = fleet.run("db", "sync", env={"CELLCTL_DATABASE_CONNECTION": url})
    assert synced.exit_code == 0, synced.stderr
    cell2 = fleet.ok("create_cell", "--name", "cell2", "--database_connection", url,
                     "--transport-url", "memory:///cell2", "--verbose"
                     ).stdout.strip().splitlines()[-1]
    second = make_fleet(fleet, url, prefix="c2-")
    rows = ring(fleet)
    assert [r["cell_uuid"] for r in rows] == [fleet.cell1] * 80 + [cell2] * 80
    for row in rows[80:]:
        assert row["owner"] == expected_owner(second, row["node"])
    assert ring(fleet, "--cell_uuid", cell2) == rows[80:]

    def listing(batch):
        monkeypatch.setattr(ironic_ring_module, "BATCH", batch)
        dbs = Databases(resolve(environ=fleet.env))
        try:
            result = ironic_ring_module.ironic_ring(dbs)
        finally:
            dbs.dispose()
        assert result.code == 0 and result.table is not None
        return [{**r, "reported_by": sorted(r["reported_by"])} for r in result.table.rows]

    whole = listing(10_000)
    assert len(whole) == 160
    for batch in (1, 2, 3, 7, 79, 81):  # pages that split the duplicated node's two rows
        assert listing(batch) == whole, batch


# --- data the way Nova writes it -------------------------------------------------------


def test_register_ironic_nodes_and_instances_on_them(any_cloud):
    cloud = any_cloud
    setup_cells(cloud)
    done = cloud.run("service", "register", "--host", "bm1", "--hypervisor-type", "ironic",
                     "--nodes", "1200", "--format", "json")
    assert done.exit_code == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["ironic_nodes_added"], data["ironic_nodes"]) == (1200, 1200)
    (service,) = cloud.rows(cloud.cell_url, "services")
    nodes = cloud.rows(cloud.cell_url, "compute_nodes")
    assert len(nodes) == 1200
    for node in nodes:
        assert (node["host"], node["hypervisor_type"], node["service_id"], node["deleted"]) == (
            "bm1", "ironic", service["id"], 0)
        assert str(uuid.UUID(node["hypervisor_hostname"])) == node["hypervisor_hostname"]
        assert node["uuid"] == node["hypervisor_hostname"]  # as Nova's Ironic driver
    # Again: at least 1200 are there, nothing added; 1300 adds 100.
    again = json.loads(cloud.ok("service", "register", "--host", "bm1", "--hypervisor-type",
                                "ironic", "--nodes", "1200", "--format", "json").stdout)
    assert again["ironic_nodes_added"] == 0
    register(cloud, "bm1", 1300)
    assert len(cloud.rows(cloud.cell_url, "compute_nodes")) == 1300
    # The same node on a second host: a second live row with its own uuid.
    node = nodes[0]["hypervisor_hostname"]
    register(cloud, "bm2", 0, "--node", node.upper())
    register(cloud, "bm2", 0, "--node", node)  # idempotent
    twins = [r for r in cloud.rows(cloud.cell_url, "compute_nodes")
             if r["hypervisor_hostname"] == node]
    assert sorted(r["host"] for r in twins) == ["bm1", "bm2"]
    assert len({r["uuid"] for r in twins}) == 2

    free = cloud.run("dev", "add-instances", "--count", "1299", "--host", "bm1", "--ironic")
    assert free.exit_code == 0, free.stderr
    instances = cloud.rows(cloud.cell_url, "instances")
    assert len({i["node"] for i in instances}) == 1299
    assert {i["host"] for i in instances} == {"bm1"}
    assert {i["node"] for i in instances} < {n["hypervisor_hostname"] for n in
                                             cloud.rows(cloud.cell_url, "compute_nodes")}
    full = cloud.run("dev", "add-instances", "--count", "2", "--host", "bm1", "--ironic")
    assert full.exit_code == 1 and "fewer than --count 2" in full.stderr

    for args in (["--nodes", "3"], ["--hypervisor-type", "ironic", "--node", "nope"],
                 ["--hypervisor-type", "ironic", "--nodes", "-1"],
                 ["--hypervisor-type", "ironic", "--nodes", "2", "--binary", "nova-conductor"]):
        bad = cloud.run("service", "register", "--host", "bm3", *args)
        assert bad.exit_code == 1, args
        assert len(bad.stderr.splitlines()) == 1, args
    assert "bm3" not in {s["host"] for s in cloud.rows(cloud.cell_url, "services")}
    for args in (["--node", node], ["--ironic"], ["--node", "nope", "--host", "bm1"]):
        bad = cloud.run("dev", "add-instances", "--count", "1", *args)
        assert bad.exit_code == 1, args


# --- what cannot be read -----------------------------------------------------------------


def run_process(cloud, *args, limit=60):
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "cellctl", "--format", "json", "ironic",
                           "ring", *args], env={**os.environ, **cloud.env},
                          capture_output=True, text=True, timeout=limit)
    return done, time.monotonic() - started


@pytest.fixture
def sqlite_fleet(sqlite_cloud):
    cloud = sqlite_cloud
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = str(DOWN_TIME)
    (cloud.cell1,) = setup_cells(cloud)
    cloud.fleet = make_fleet(cloud)
    return cloud


def check_dead_cell(cloud, done, dead, secret):
    assert done.returncode == 0, done.stderr
    warnings = [json.loads(line) for line in done.stderr.splitlines()]
    assert [w["unreachable_cells"] for w in warnings if "unreachable_cells" in w] == [[dead]]
    assert any(dead in w["message"] and w["level"] == "warning" for w in warnings)
    assert secret not in done.stdout + done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) == 80
    assert {r["cell_uuid"] for r in rows} == {cloud.cell1}


def test_cell_on_a_closed_port_and_a_dead_url(sqlite_fleet):
    cloud = sqlite_fleet
    with closed_port() as port:
        dead = cloud.ok("create_cell", "--name", "remote", "--database_connection",
                        f"mysql+pymysql://nova:cl0sed-secret@127.0.0.1:{port}/nova",
                        "--transport-url", "memory:///r", "--verbose"
                        ).stdout.strip().splitlines()[-1]
        done, _ = run_process(cloud)
        check_dead_cell(cloud, done, dead, "cl0sed-secret")
        summary, _ = run_process(cloud, "--summary")
        assert summary.returncode == 0
        assert {r["cell_uuid"] for r in json.loads(summary.stdout)} == {cloud.cell1}
        only, _ = run_process(cloud, "--cell_uuid", dead)
        assert (only.returncode, json.loads(only.stdout)) == (0, [])
    kill_cell(cloud, dead)  # the hostsupport dead URL: port 1
    done, _ = run_process(cloud)
    check_dead_cell(cloud, done, dead, "secretpw")
    assert DEAD_CELL_URL not in done.stderr


@pytest.mark.parametrize("fault", ["kill", "freeze"])
def test_cell_whose_server_died_or_stopped(sqlite_fleet, throwaway_mariadb, fault):
    cloud = sqlite_fleet
    url = throwaway_mariadb.create_database(f"cellctl_t_{uuid.uuid4().hex[:10]}")
    synced = cloud.run("db", "sync", env={"CELLCTL_DATABASE_CONNECTION": url})
    assert synced.exit_code == 0, synced.stderr
    register(cloud, "far", 20, url=url)
    remote = cloud.ok("create_cell", "--name", "remote", "--database_connection", url,
                      "--transport-url", "memory:///remote", "--verbose"
                      ).stdout.strip().splitlines()[-1]
    alive, _ = run_process(cloud)
    assert len(json.loads(alive.stdout)) == 100  # the remote cell's 20 are there
    getattr(throwaway_mariadb, fault)()

    done, elapsed = run_process(cloud)

    check_dead_cell(cloud, done, remote, PASSWORD)
    assert elapsed < 15, elapsed  # the probe's timeout once, not a wait per query


# --- the service group backend ------------------------------------------------------------


class UnreachableBackend:
    """A driver whose backend cannot be reached, as an mc/zk driver with its server gone.

    Test-only: with only the db driver, such a fault cannot be made for real.
    """

    name = "mc"

    def describe(self):
        return "memcached 127.0.0.1:1"

    def alive(self, services, now):
        from cellctl.liveness import BackendUnreachable

        raise BackendUnreachable("Cannot reach memcached 127.0.0.1:1")

    def take_warnings(self):
        return []

    def report(self, cell_db, service):
        raise AssertionError("ironic ring never reports")

    def close(self):
        pass


def test_unreachable_backend_makes_owners_unknown_never_guessed(cloud_no_pg, monkeypatch):
    import cellctl.liveness as liveness
    from cellctl.db import Databases
    from cellctl.ops.ironic_ring import ironic_ring
    from cellctl.settings import resolve

    cloud = cloud_no_pg
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = str(DOWN_TIME)
    (cloud.cell1,) = setup_cells(cloud)
    f = make_fleet(cloud)
    monkeypatch.setattr(liveness, "service_group", lambda settings: UnreachableBackend())
    dbs = Databases(resolve(environ=cloud.env))
    try:
        listing = ironic_ring(dbs)
        summary = ironic_ring(dbs, summary=True)
        what_if = ironic_ring(dbs, without=[f["hosts"]["a"]], show_all=True)
    finally:
        dbs.dispose()
    assert (listing.code, summary.code, what_if.code) == (0, 0, 0)
    rows = {r["node"]: r for r in listing.table.rows}
    assert len(rows) == 80
    for node, row in rows.items():
        if node in f["instance_hosts"]:
            assert row["owner"] == f["instance_hosts"][node]  # known without the backend
        else:
            assert row["owner"] == "unknown", row
        # forced down is in the database: those are down whatever the backend says
        if row["reported_by"] != [f["hosts"]["e"]]:
            assert row["state"] == "unknown", row
    assert any("memcached 127.0.0.1:1" in m.text and m.level == "warning"
               for m in listing.messages)
    states = {r["host"]: r["state"] for r in summary.table.rows}
    assert {s for h, s in states.items() if h != f["hosts"]["e"]} == {"unknown"}
    assert {r["owner_after"] for r in what_if.table.rows
            if r["node"] not in f["instance_hosts"]} == {"unknown"}


def mc_conf(tmp_path, servers):
    path = tmp_path / "mc.conf"
    path.write_text("[DEFAULT]\nservicegroup_driver = mc\n[cache]\nenabled = true\n"
                    f"backend = dogpile.cache.memcached\nmemcache_servers = {servers}\n")
    return str(path)


def zk_conf(tmp_path, address):
    path = tmp_path / "zk.conf"
    path.write_text("[DEFAULT]\nservicegroup_driver = zk\n"
                    f"[zookeeper]\naddress = {address}\nsg_prefix = /servicegroups\n")
    return str(path)


@pytest.mark.parametrize(("driver", "dead"), [("mc", "closed"), ("mc", "black hole"),
                                              ("zk", "black hole")])
def test_real_driver_whose_backend_is_unreachable(sqlite_fleet, tmp_path, driver, dead):
    """The mc and zk drivers with nothing answering (a closed port, or a black hole that
    accepts and never answers): owners and states unknown, one warning, a bounded wait."""
    cloud = sqlite_fleet
    f = cloud.fleet
    with (closed_port() if dead == "closed" else black_hole()) as port:
        conf = (mc_conf if driver == "mc" else zk_conf)(tmp_path, f"127.0.0.1:{port}")
        started = time.monotonic()
        done = cloud.run("--config-file", conf, "--format", "json", "ironic", "ring")
        elapsed = time.monotonic() - started
        summary = cloud.run("--config-file", conf, "--format", "json", "ironic", "ring",
                            "--summary")
    assert (done.exit_code, summary.exit_code) == (0, 0), done.stderr + summary.stderr
    rows = json.loads(done.stdout)
    assert len(rows) == 80
    for row in rows:
        if row["node"] in f["instance_hosts"]:
            assert row["owner"] == f["instance_hosts"][row["node"]]  # known without it
        else:
            assert row["owner"] == "unknown", row
        if row["reported_by"] == [f["hosts"]["e"]]:
            assert row["state"] == "orphaned", row  # forced down is down, backend or not
        else:
            assert row["state"] == "unknown", row
    (warning,) = [json.loads(line)["message"] for line in done.stderr.splitlines()]
    assert f"127.0.0.1:{port}" in warning and "unknown" in warning
    assert elapsed < 15, elapsed  # the backend's time budget, once
    states = {r["host"]: r["state"] for r in json.loads(summary.stdout)}
    assert states.pop(f["hosts"]["e"]) == "forced down"
    assert set(states.values()) == {"unknown"}


def test_owners_by_the_mc_driver(sqlite_cloud, tmp_path, memcached_server):
    """Liveness from memcached, as Nova's mc driver keeps it: the services that beat through
    it are the ring; the database's heartbeats (all fresh here) count for nothing."""
    cloud = sqlite_cloud
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = str(DOWN_TIME)
    (cloud.cell1,) = setup_cells(cloud)
    f = make_fleet(cloud, prefix=f"{uuid.uuid4().hex[:8]}-")  # keys of this test's own
    h = f["hosts"]
    conf = mc_conf(tmp_path, memcached_server)
    for key in ("a", "b", "d", "ghost"):  # c never beats: down for mc, up by the database
        beat = cloud.run("--config-file", conf, "service", "heartbeat", "--host", h[key],
                         "--count", "1")
        assert beat.exit_code == 0, beat.stderr
    cloud.execute(cloud.cell_url, "UPDATE services SET last_seen_up = :t WHERE host = :h",
                  {"t": utcnow(), "h": h["c"]})
    done = cloud.run("--config-file", conf, "--format", "json", "ironic", "ring")
    assert done.exit_code == 0, done.stderr
    rows = json.loads(done.stdout)
    assert len(rows) == 80
    for row in rows:
        owner = expected_owner(f, row["node"])
        assert row["owner"] == owner, row
        assert row["state"] == expected_state(f, row["reported_by"], owner), row
    by_db = ring(cloud)  # the db driver sees c up: c joins the ring there
    assert any(r["owner"] == h["c"] and r["node"] not in f["instance_hosts"] for r in by_db)


# --- the summary's fast path against a slow reference -----------------------------------


def random_cell(cloud, rng):
    """A cell with every state the ring cares about, at random: services up, down,
    disabled, forced down, deleted, without an Ironic row, whose only row is deleted,
    spelled in mixed case; nodes reported once, twice (by live or dead services) or by
    a host without a service; live and deleted instances on nodes, some on a host that
    is not the reporter. Returns the services and rows as written."""
    from cellctl.tables.cell import compute_nodes, instances, services
    from cellctl.tables.rows import compute_node_row, insert_fake_instances, service_row

    now = utcnow()
    long_ago = now - datetime.timedelta(seconds=3 * DOWN_TIME)
    kinds = ["up", "down", "disabled", "forced", "deleted", "no-row", "deleted-row"]
    hosts = {f"{rng.choice(['bm', 'BM', 'Bm'])}-{n}": rng.choice(kinds)
             for n in range(rng.randint(4, 12))}
    hosts[f"bm-up-{rng.randint(0, 99)}"] = "up"  # at least one member
    engine = sa.create_engine(cloud.cell_url)
    written = {"services": [], "rows": [], "instances": []}
    try:
        with engine.begin() as conn:
            for host, kind in hosts.items():
                row = service_row(host, "nova-compute", now=now)
                row.update(created_at=long_ago, last_seen_up=long_ago if kind == "down" else now,
                           disabled=kind == "disabled", forced_down=kind == "forced",
                           deleted=1 if kind == "deleted" else 0)
                conn.execute(services.insert(), [row])
                written["services"].append(row)
            reporters = [h for h, k in hosts.items() if k != "no-row"] + ["no-service-host"]
            nodes = [str(uuid.uuid4()) for _ in range(rng.randint(150, 400))]
            for node in nodes:
                for host in rng.sample(reporters, rng.choice([1, 1, 1, 1, 2])):
                    deleted = 1 if hosts.get(host) == "deleted-row" else 0
                    row = compute_node_row(host, None, now=now, hypervisor_type="ironic",
                                           hypervisor_hostname=node)
                    row["deleted"] = deleted
                    conn.execute(compute_nodes.insert(), [row])
                    written["rows"].append(row)
            kvm = compute_node_row(next(iter(hosts)), None, now=now)  # not Ironic
            conn.execute(compute_nodes.insert(), [kvm])
        for node in rng.sample(nodes, len(nodes) // 5):
            host = rng.choice(list(hosts))
            insert_fake_instances(engine, rng.choice([1, 1, 2]), host=host, nodes=[node] * 2,
                                  deleted=rng.choice([0, 0, 1]))
        with engine.connect() as conn:
            written["instances"] = [dict(r._mapping) for r in conn.execute(
                sa.select(instances.c.id, instances.c.node, instances.c.host,
                          instances.c.deleted))]
    finally:
        engine.dispose()
    return written


def slow_summary(written, without=()):
    """What the summary must count, the obvious way: each service judged, tooz's ring
    over Nova's members, then each live node on its own: its oldest live instance's
    host, else its ring owner; every live row a report."""
    cutoff = utcnow() - datetime.timedelta(seconds=DOWN_TIME)
    live_services = [s for s in written["services"] if s["deleted"] == 0]
    has_row = {r["host"] for r in written["rows"]}  # deleted rows count too
    members = {s["host"].lower() for s in live_services
               if s["host"] in has_row and not s["disabled"] and not s["forced_down"]
               and s["last_seen_up"] >= cutoff}
    after = members - {h.lower() for h in without}
    spelling = {}
    for s in sorted(live_services, key=lambda s: s["host"]):
        spelling.setdefault(s["host"].lower(), s["host"])
    reported, owned, owned_after = {}, {}, {}
    nodes = {}
    for row in written["rows"]:
        if row["deleted"] == 0:
            reported[row["host"]] = reported.get(row["host"], 0) + 1
            nodes.setdefault(row["hypervisor_hostname"], row)
    for node in nodes:
        on = sorted((i for i in written["instances"] if i["node"] == node
                     and i["deleted"] == 0), key=lambda i: i["id"])
        if on:
            now_owner = later = on[0]["host"]
        else:
            now_owner = spelling.get(tooz_owner(members, node)) if members else None
            later = spelling.get(tooz_owner(after, node)) if after else None
        if now_owner is not None:
            owned[now_owner] = owned.get(now_owner, 0) + 1
        if later is not None:
            owned_after[later] = owned_after.get(later, 0) + 1
    return reported, owned, owned_after


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_summary_fast_path_equals_a_slow_reference(any_cloud, monkeypatch, seed):
    """The summary's counting pass (no node states) against the slow reference above,
    and against the per-node path (``--state``, one state at a time), on a random cell,
    in pages that split the nodes' rows anywhere."""
    import random

    import cellctl.ops.ironic_ring as ironic_ring_module
    from cellctl.db import Databases
    from cellctl.settings import resolve

    cloud = any_cloud
    cloud.extra_env["CELLCTL_SERVICE_DOWN_TIME"] = str(DOWN_TIME)
    setup_cells(cloud)
    rng = random.Random(seed)
    written = random_cell(cloud, rng)
    monkeypatch.setattr(ironic_ring_module, "BATCH", rng.choice([7, 50, 20_000]))

    def summary(**kwargs):
        dbs = Databases(resolve(environ=cloud.env))
        try:
            result = ironic_ring_module.ironic_ring(dbs, summary=True, **kwargs)
        finally:
            dbs.dispose()
        assert result.code == 0 and result.table is not None
        return {r["host"]: r for r in result.table.rows}

    reported, owned, owned_after = slow_summary(written)
    fast = summary()
    assert {h: r["nodes_reported"] for h, r in fast.items() if r["nodes_reported"]} == reported
    assert {h: r["nodes_owned"] for h, r in fast.items() if r["nodes_owned"]} == owned
    assert sum(owned.values()) > 0 and len(reported) > 2
    per_state = [summary(state=state) for state in ironic_ring_module.STATES]
    for host, row in fast.items():
        for column in ("nodes_reported", "nodes_owned"):
            assert row[column] == sum(s[host][column] for s in per_state if host in s), host
    leaving = sorted({s["host"] for s in written["services"]
                      if s["deleted"] == 0 and s["host"] in reported})[:1]
    _, _, owned_after = slow_summary(written, without=leaving)
    what_if = summary(without=leaving)
    assert {h: r["nodes_owned_after"] for h, r in what_if.items()
            if r["nodes_owned_after"]} == owned_after
