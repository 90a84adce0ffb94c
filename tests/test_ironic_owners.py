"""``cellctl ironic owners`` against a real Ironic API and Nova 34's own driver.

A real Ironic 39 (``tests/ironic_env.py``: noauth, fake hardware, one
conductor per conductor group) holds the nodes, made through its API with
conductor groups, shards and instance UUIDs, 25 per page (every listing is
paged, by cellctl and by Nova). The cell database has Nova's own
schema (``nova-manage db sync``). For every compute host, Nova 34's
``IronicDriver`` is built with that host's nova.conf and asked
``get_available_nodes(refresh=True)`` (``tests/nova_ironic_views.py``); cellctl,
given the same files, must compute the same nodes for every host, and the
same managers for every node (the hosts whose service is up).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from ironic_env import IronicService, ironic_venv
from nova_env import create_nova_database, mysql_url, server_sql

from cellctl.cli import main
from cellctl.clock import utcnow

pytestmark = [pytest.mark.nova, pytest.mark.mysql, pytest.mark.ironic]

DOWN_TIME = 3600
GROUPS = ("g1", "g2")
VIEWS_SCRIPT = Path(__file__).with_name("nova_ironic_views.py")
PAGE = 25  # Ironic's [api] max_limit here: every listing of more nodes is paged


@pytest.fixture(scope="module")
def ironic_api(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from conftest import require_server, unavailable

    require_server("mysql")
    try:
        venv = ironic_venv()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        unavailable("ironic (from PyPI)", exc)
    name = f"cellctl_t_ironic_{uuid.uuid4().hex[:10]}"
    server_sql(f"CREATE DATABASE {name} CHARACTER SET utf8")
    service = IronicService(venv, tmp_path_factory.mktemp("ironic"), mysql_url(name), GROUPS,
                            max_limit=PAGE)
    try:
        service.start()
        yield service
    finally:
        service.stop()
        server_sql(f"DROP DATABASE IF EXISTS {name}")


def clear_nodes(ironic: IronicService) -> None:
    while page := ironic.get("/v1/nodes?fields=uuid,instance_uuid")["nodes"]:  # first page
        for node in page:
            if node["instance_uuid"]:
                ironic.request("PATCH", f"/v1/nodes/{node['uuid']}",
                               [{"op": "remove", "path": "/instance_uuid"}])
            ironic.request("DELETE", f"/v1/nodes/{node['uuid']}")


def every_node(ironic: IronicService) -> set[str]:
    """Every node's UUID, page by page (``marker``: the last of the previous page)."""
    found: list[str] = []
    while page := ironic.get("/v1/nodes?fields=uuid&sort_key=id"
                             + (f"&marker={found[-1]}" if found else ""))["nodes"]:
        assert len(page) <= PAGE
        found += [node["uuid"] for node in page]
    return set(found)


class Deployment:
    """Nova's API and cell databases, the compute services, and one nova.conf each."""

    def __init__(self, tmp_path: Path, schema: Any, ironic: IronicService) -> None:
        token = uuid.uuid4().hex[:8]
        self.api_name, self.cell_name = f"cellctl_t_ia_{token}", f"cellctl_t_ic_{token}"
        create_nova_database(self.api_name, "api", schema)
        create_nova_database(self.cell_name, "main", schema)
        self.api_url, self.cell_url = mysql_url(self.api_name), mysql_url(self.cell_name)
        self.tmp_path, self.ironic = tmp_path, ironic
        self.confs: dict[str, Path] = {}
        self.cell_uuid = str(uuid.uuid4())
        self.sql(self.api_url, "INSERT INTO cell_mappings (created_at, uuid, name, "
                 "transport_url, database_connection, disabled) VALUES (:now, :u, 'cell1', "
                 "'none:///', :db, 0)", now=utcnow(), u=self.cell_uuid, db=self.cell_url)

    def drop(self) -> None:
        server_sql(f"DROP DATABASE IF EXISTS {self.api_name}",
                   f"DROP DATABASE IF EXISTS {self.cell_name}")

    @staticmethod
    def sql(url: str, statement: str, **params: Any) -> None:
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(statement), params)
        finally:
            engine.dispose()

    def service(self, host: str, *, ironic: dict[str, str], state: str = "up",
                rows: int = 1) -> None:
        """A nova-compute service (up, down, disabled or forced-down) with ``rows``
        ironic compute_nodes rows, and its own nova.conf."""
        now = utcnow()
        seen = now if state != "down" else now - datetime.timedelta(seconds=3 * DOWN_TIME)
        self.sql(self.cell_url, "INSERT INTO services (created_at, host, `binary`, topic, "
                 "report_count, disabled, deleted, last_seen_up, forced_down, version, uuid) "
                 "VALUES (:c, :h, 'nova-compute', 'compute', 1, :d, 0, :s, :f, 72, :u)",
                 c=now - datetime.timedelta(days=1), h=host, d=state == "disabled", s=seen,
                 f=state == "forced-down", u=str(uuid.uuid4()))
        for _ in range(rows):
            self.compute_node(host, str(uuid.uuid4()))
        lines = ["[DEFAULT]", f"host = {host}", f"service_down_time = {DOWN_TIME}",
                 "[database]", f"connection = {self.cell_url}",
                 "[api_database]", f"connection = {self.api_url}",
                 "[ironic]", "auth_type = none", f"endpoint_override = {self.ironic.url}"]
        lines += [f"{key} = {value}" for key, value in ironic.items()]
        path = self.tmp_path / "services" / f"{host}.conf"
        path.parent.mkdir(exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        self.confs[host] = path

    def compute_node(self, host: str, node: str) -> None:
        self.sql(self.cell_url, "INSERT INTO compute_nodes (created_at, host, "
                 "hypervisor_hostname, uuid, vcpus, memory_mb, local_gb, vcpus_used, "
                 "memory_mb_used, local_gb_used, hypervisor_type, hypervisor_version, "
                 "cpu_info, deleted, mapped) VALUES (:c, :h, :n, :n, 1, 1, 1, 0, 0, 0, "
                 "'ironic', 1, '{}', 0, 0)", c=utcnow(), h=host, n=node)

    def instance(self, host: str, node: str | None = None) -> str:
        instance = str(uuid.uuid4())
        self.sql(self.cell_url, "INSERT INTO instances (created_at, uuid, host, node, "
                 "deleted, vm_state, project_id, user_id) VALUES (:c, :u, :h, :n, 0, "
                 "'active', 'p', 'u')", c=utcnow(), u=instance, h=host, n=node)
        return instance

    def nodes(self, count: int, *, conductor_group: str = "", shard: str | None = None,
              instance_on: str | None = None, seed: str | None = None) -> list[str]:
        """``count`` nodes; with ``seed``, their UUIDs are fixed (uuid5 of seed and index)."""
        made = []
        for index in range(count):
            node = (str(uuid.uuid4()) if seed is None
                    else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}:{index}")))
            instance = None if instance_on is None else self.instance(instance_on, node)
            self.ironic.create_node(uuid=node, conductor_group=conductor_group, shard=shard,
                                    instance_uuid=instance)
            made.append(node)
        return made

    def nova_views(self, venv: Path, hosts: Any = None) -> dict[str, Any]:
        done = subprocess.run(
            [str(venv / "bin" / "python"), str(VIEWS_SCRIPT),
             *[str(p) for h, p in self.confs.items() if hosts is None or h in hosts]],
            capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def cellctl(self, *args: str) -> Any:
        done = self.invoke(*args)
        assert done.exit_code == 0, (done.stdout, done.stderr)
        return json.loads(done.stdout)

    def invoke(self, *args: str) -> Any:
        conf = self.tmp_path / "cellctl.conf"
        conf.write_text("\n".join([
            "[DEFAULT]", f"service_down_time = {DOWN_TIME}", "transport_url = none:///",
            "[api_database]", f"connection = {self.api_url}",
            "[database]", f"connection = {self.cell_url}",
            "[ironic]", "auth_type = none", f"endpoint_override = {self.ironic.url}"]) + "\n")
        runner = CliRunner(env={"HOME": str(self.tmp_path / "home")})
        done = runner.invoke(main, ["--config-file", str(conf), "ironic", "owners",
                                    "--service-config-dir", str(self.tmp_path / "services"),
                                    "--format", "json", *args], catch_exceptions=False)
        return done


@pytest.fixture
def deployment(tmp_path: Path, nova_schema: Any, ironic_api: IronicService) -> Any:
    clear_nodes(ironic_api)
    made = Deployment(tmp_path, nova_schema, ironic_api)
    yield made
    made.drop()


def rows_of(payload: Any) -> list[dict[str, Any]]:
    return payload["rows"] if isinstance(payload, dict) else payload


def would_manage(nodes: dict[str, Any]) -> dict[str, list[str]]:
    """Each host's view, as the node listing's ``would_manage`` gives it."""
    views: dict[str, list[str]] = {}
    for node, row in nodes.items():
        for host in row["would_manage"]:
            views.setdefault(host, []).append(node)
    return {host: sorted(view) for host, view in views.items()}


def assert_same_as_nova(deployment: Deployment, nova_venv_path: Path,
                        running: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """cellctl's view of every host == Nova's driver's; managers == running hosts' views."""
    nova = deployment.nova_views(nova_venv_path)
    assert set(nova) == set(deployment.confs)
    services = {row["host"]: row for row in rows_of(deployment.cellctl("--services"))}
    nodes = {row["node"]: row for row in rows_of(deployment.cellctl())}
    assert set(nodes) == every_node(deployment.ironic)
    views = would_manage(nodes)
    for host, view in nova.items():
        mine = services[host]
        if isinstance(view, dict):  # Nova refused: the service manages nothing
            assert view == {"error": "InvalidPeerList"}
            assert host not in views and mine["nodes_managed"] == 0
            assert any("peer_list" in p for p in mine["problems"])
        else:  # the listing's view and the summary's count (computed apart) are Nova's
            assert views.get(host, []) == view, host
            assert mine["nodes_managed"] == len(view), host
    for node, row in nodes.items():
        expected = sorted(h for h, v in nova.items() if isinstance(v, list) and node in v
                          and h in running)
        assert sorted(row["managed_by"]) == expected, node
        assert ("double-managed" in row["flags"]) == (len(expected) > 1)
        assert ("unmanaged" in row["flags"]) == (not expected)
    return nova, nodes


def test_plain_ring_with_disabled_down_and_forced_down(deployment, nova_venv_path):
    d = deployment
    for host in ("ironic-a", "ironic-b", "ironic-c"):
        d.service(host, ironic={})
    d.service("ironic-disabled", ironic={}, state="disabled")
    d.service("ironic-down", ironic={}, state="down")
    d.service("ironic-forced", ironic={}, state="forced-down")
    d.nodes(80)
    on_a = d.nodes(2, instance_on="ironic-a")
    on_down = d.nodes(1, instance_on="ironic-down")
    running = {"ironic-a", "ironic-b", "ironic-c", "ironic-disabled"}
    nova = d.nova_views(nova_venv_path)
    only_a = [n for n in nova["ironic-a"] if all(n not in nova[h] for h in running - {"ironic-a"})]
    d.compute_node("ironic-b", only_a[0])  # reported by b, managed by a: moves to a
    d.compute_node("ironic-a", only_a[1])  # in place
    nova, nodes = assert_same_as_nova(d, nova_venv_path, running)
    assert nodes[only_a[0]]["reported_by"] == ["ironic-b"]
    assert "moving" in nodes[only_a[0]]["flags"]
    assert nodes[only_a[1]]["flags"] == []
    # The disabled service still manages its own share: those nodes have two managers.
    doubled = [n for n, row in nodes.items() if "double-managed" in row["flags"]]
    assert doubled and all("ironic-disabled" in nodes[n]["managed_by"] for n in doubled)
    assert all(nodes[n]["managed_by"] == ["ironic-a"] for n in on_a)
    assert "instance host down" in nodes[on_down[0]]["flags"]
    assert nodes[on_down[0]]["managed_by"] == []
    # every node without an instance has a manager; the down services' views are Nova's too
    assert nova["ironic-down"] and nova["ironic-forced"]


def test_b7_six_services_one_disabled_320_nodes(deployment, nova_venv_path):
    """The facts' B.7 figure: a plain 6-service cell, 320 nodes, one service disabled but
    still running. The facts give no host names or node UUIDs (they gave 61 doubly
    managed nodes); here both are fixed, and cellctl's count of double-managed nodes
    must be the one Nova 34's driver gives, run per host in the same test, and not 0."""
    d = deployment
    hosts = [f"bm-{n}" for n in range(1, 7)]
    for host in hosts[:-1]:
        d.service(host, ironic={})
    d.service(hosts[-1], ironic={}, state="disabled")
    d.nodes(320, seed="b7")
    nova, nodes = assert_same_as_nova(d, nova_venv_path, set(hosts))
    nova_double = sum(1 for node in nodes
                      if sum(node in view for view in nova.values()) > 1)
    doubled = [n for n, row in nodes.items() if "double-managed" in row["flags"]]
    assert len(nodes) == 320
    assert len(doubled) == nova_double > 0
    # Every doubly managed node is the disabled service's and one enabled service's.
    assert all(len(nodes[n]["managed_by"]) == 2 and hosts[-1] in nodes[n]["managed_by"]
               for n in doubled)
    assert len(doubled) == len(nova[hosts[-1]])  # its whole share of its own ring
    print(f"B.7: {len(doubled)} of 320 nodes double-managed (Nova's driver: {nova_double})")


def test_shards(deployment, nova_venv_path):
    d = deployment
    d.service("shard-a", ironic={"shard": "s1"})
    d.service("shard-b", ironic={"shard": "s2"})
    d.service("shard-b2", ironic={"shard": "s2"})  # two services on one shard
    d.service("shard-down", ironic={"shard": "s3"}, state="down")
    d.nodes(PAGE + 5, shard="s1")  # shard s1's listing is paged (Ironic's next links
    d.nodes(10, shard="s2")  # leave the shard filter out: the client keeps it)
    s3 = d.nodes(5, shard="s3")
    lost = d.nodes(3, shard="s4")
    d.nodes(2, shard="s1", instance_on="shard-a")
    running = {"shard-a", "shard-b", "shard-b2"}
    _, nodes = assert_same_as_nova(d, nova_venv_path, running)
    # A shard has no failover: the down shard's nodes have no manager.
    assert all(nodes[n]["flags"][:1] == ["unmanaged"] for n in s3)
    assert all("unserved" in nodes[n]["flags"] for n in lost)
    services = {row["host"]: row for row in rows_of(d.cellctl("--services"))}
    assert any("shares shard s2" in p for p in services["shard-b"]["problems"])
    assert not services["shard-a"]["problems"]


def test_conductor_groups_and_peer_lists(deployment, nova_venv_path):
    d = deployment
    d.service("cg-1", ironic={"conductor_group": "g1", "peer_list": "cg-1,cg-2"})
    d.service("cg-2", ironic={"conductor_group": "g1", "peer_list": "cg-1,cg-2"},
              state="disabled")
    d.service("cg-3", ironic={"conductor_group": "g2", "peer_list": "cg-3,cg-4"})
    d.service("cg-4", ironic={"conductor_group": "g2", "peer_list": "cg-3,cg-4"},
              state="forced-down")
    d.service("cg-bad", ironic={"conductor_group": "", "peer_list": "cg-1"})
    d.nodes(30, conductor_group="g1")
    d.nodes(30, conductor_group="g2")
    default = d.nodes(6)
    running = {"cg-1", "cg-2", "cg-3", "cg-bad"}
    _, nodes = assert_same_as_nova(d, nova_venv_path, running)
    services = {row["host"]: row for row in rows_of(d.cellctl("--services"))}
    assert services["cg-bad"]["nodes_managed"] == 0
    assert not any("cg-bad" in row["would_manage"] for row in nodes.values())
    assert all("unmanaged" in nodes[n]["flags"] for n in default)


def test_each_service_reads_ironic_with_its_own_settings(deployment, nova_venv_path):
    """Each service's listing is fetched with its own [ironic] group: bm-b reaches the
    same API under another name (a second connection), bm-dead's endpoint is a closed
    port: its view alone is unknown, with one warning, and only the nodes its filter
    (shard s9) passes are unknown; the others' views are still Nova's."""
    from servers import closed_port

    d = deployment
    d.service("bm-a", ironic={})
    d.service("bm-b", ironic={})
    with closed_port() as port:
        d.service("bm-dead", ironic={"shard": "s9"})
        path = d.confs["bm-dead"]
        path.write_text(path.read_text().replace(d.ironic.url, f"http://127.0.0.1:{port}"))
        path = d.confs["bm-b"]
        path.write_text(path.read_text().replace("127.0.0.1", "localhost"))
        plain = d.nodes(24)
        s9 = d.nodes(4, shard="s9")
        done = d.invoke()
        services = {row["host"]: row for row in rows_of(d.cellctl("--services"))}
    assert done.exit_code == 0, done.stderr
    assert done.stderr.count("Ironic unreachable") == 1, done.stderr
    assert "Ironic unreachable through the [ironic] settings of bm-dead" in done.stderr
    assert "Traceback" not in done.stderr
    nodes = {row["node"]: row for row in rows_of(json.loads(done.stdout))}
    assert set(nodes) == set(plain) | set(s9)
    assert all("unknown" in nodes[n]["flags"] for n in s9)
    assert not any("unknown" in nodes[n]["flags"] for n in plain)
    assert services["bm-dead"]["nodes_managed"] is None
    assert any("Ironic unreachable" in p for p in services["bm-dead"]["problems"])
    nova = d.nova_views(nova_venv_path, {"bm-a", "bm-b"})
    for host in ("bm-a", "bm-b"):
        assert services[host]["nodes_listed"] == 28
        assert services[host]["nodes_managed"] == len(nova[host]), host
        assert would_manage(nodes).get(host, []) == nova[host], host
    for node in plain:
        expected = sorted(h for h in ("bm-a", "bm-b") if node in nova[h])
        assert sorted(nodes[node]["managed_by"]) == expected, node


@pytest.mark.parametrize("fault", ["refused", "black hole"])
def test_ironic_unreachable_is_one_warning_within_the_budget(deployment, tmp_path, fault):
    from servers import black_hole, closed_port

    d = deployment
    d.service("ironic-a", ironic={}, rows=2)
    with (closed_port() if fault == "refused" else black_hole()) as port:
        dead = f"http://127.0.0.1:{port}"
        for path in (tmp_path / "services").iterdir():
            path.write_text(path.read_text().replace(d.ironic.url, dead))
        conf = tmp_path / "cellctl.conf"
        conf.write_text(f"[DEFAULT]\nservice_down_time = {DOWN_TIME}\n[api_database]\n"
                        f"connection = {d.api_url}\n[database]\nconnection = {d.cell_url}\n"
                        f"[ironic]\nauth_type = none\nendpoint_override = {dead}\n")
        runner = CliRunner(env={"HOME": str(tmp_path / "home")})
        started = time.monotonic()
        done = runner.invoke(main, ["--config-file", str(conf), "ironic", "owners",
                                    "--service-config-dir", str(tmp_path / "services"),
                                    "--format", "json"], catch_exceptions=False)
        elapsed = time.monotonic() - started
    assert done.exit_code == 0, done.stderr
    assert done.stderr.count("Ironic unreachable") == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert elapsed < 5.0 + 3.0  # the probe budget, plus the databases' reads
    rows = rows_of(json.loads(done.stdout))
    # The nodes are then the compute_nodes rows, and nobody's managers are known.
    assert len(rows) == 2 and all(row["flags"] == ["unknown"] for row in rows)


def test_without_ironic_configured_the_database_view_says_so(deployment, tmp_path):
    d = deployment
    d.service("ironic-a", ironic={}, rows=3)
    for path in (tmp_path / "services").iterdir():
        path.write_text("\n".join(line for line in path.read_text().splitlines()
                                  if "auth_type" not in line and "endpoint" not in line))
    conf = tmp_path / "cellctl.conf"
    conf.write_text(f"[DEFAULT]\nservice_down_time = {DOWN_TIME}\n[api_database]\n"
                    f"connection = {d.api_url}\n[database]\nconnection = {d.cell_url}\n")
    runner = CliRunner(env={"HOME": str(tmp_path / "home")})
    done = runner.invoke(main, ["--config-file", str(conf), "ironic", "owners",
                                "--service-config-dir", str(tmp_path / "services"),
                                "--format", "json"], catch_exceptions=False)
    assert done.exit_code == 0, done.stderr
    assert "No [ironic] group says how to reach Ironic" in done.stderr
    rows = rows_of(json.loads(done.stdout))
    assert len(rows) == 3 and all(row["managed_by"] == ["ironic-a"] for row in rows)
    table = runner.invoke(main, ["--config-file", str(conf), "ironic", "owners",
                                 "--service-config-dir", str(tmp_path / "services"),
                                 "--services"], catch_exceptions=False)
    assert table.exit_code == 0, table.stderr
    assert "No [ironic] group" in table.stdout and "| ironic-a |" in table.stdout
