"""The configured service group driver through the CLI: list_hosts --status, service list and
service heartbeat under mc and zk, against the real memcached and ZooKeeper."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hostsupport import add_hosts, cellctl_process, setup_cells
from servers import black_hole, closed_port
from test_liveness_mc import nova_is_up, nova_region

from cellctl.liveness.memcache import cache_key, heartbeat_value


def mc_conf(tmp_path: Path, servers: str, backend: str = "dogpile.cache.memcached",
            name: str = "mc.conf") -> str:
    path = tmp_path / name
    path.write_text("[DEFAULT]\nservicegroup_driver = mc\n[cache]\nenabled = true\n"
                    f"backend = {backend}\nmemcache_servers = {servers}\n")
    return str(path)


def zk_conf(tmp_path: Path, address: str, prefix: str, name: str = "zk.conf") -> str:
    path = tmp_path / name
    path.write_text("[DEFAULT]\nservicegroup_driver = zk\n"
                    f"[zookeeper]\naddress = {address}\nsg_prefix = {prefix}\n"
                    "recv_timeout = 4000\n")
    return str(path)


@pytest.fixture
def cell(sqlite_cloud: Any) -> Any:
    """cell1 with three mapped compute hosts of this test's own names."""
    (sqlite_cloud.cell_uuid,) = setup_cells(sqlite_cloud)
    tag = uuid.uuid4().hex[:8]
    sqlite_cloud.hosts = [f"{tag}-up", f"{tag}-down", f"{tag}-forced"]
    add_hosts(sqlite_cloud.cell_url, sqlite_cloud.hosts)  # created now: up for the db driver
    sqlite_cloud.execute(sqlite_cloud.cell_url,
                         "UPDATE services SET forced_down = 1 WHERE host = :h",
                         {"h": sqlite_cloud.hosts[2]})
    sqlite_cloud.ok("discover_hosts")
    return sqlite_cloud


def states(cloud: Any, conf: str | None, *args: str) -> tuple[dict[str, str], Any]:
    pre = ["--config-file", conf] if conf else []
    result = cloud.run(*pre, "--format", "json", "list_hosts", "--status", *args)
    assert result.exit_code == 0, result.stderr
    return {r["hostname"]: r["state"] for r in json.loads(result.stdout)}, result


def service_states(cloud: Any, conf: str | None) -> dict[str, str]:
    pre = ["--config-file", conf] if conf else []
    result = cloud.run(*pre, "--format", "json", "service", "list")
    assert result.exit_code == 0, result.stderr
    return {r["host"]: r["state"] for r in json.loads(result.stdout)}


@pytest.mark.memcached
def test_mc_heartbeat_seen_by_nova_and_listings(cell: Any, memcached_server: str,
                                                tmp_path: Path) -> None:
    up, down, forced = cell.hosts
    conf = mc_conf(tmp_path, memcached_server)
    beat = cell.run("--config-file", conf, "--format", "json", "service", "heartbeat",
                    "--host", up, "--count", "1")
    assert beat.exit_code == 0, beat.stderr
    assert json.loads(beat.stdout)["driver"] == "mc"
    region = nova_region([memcached_server], "dogpile.cache.memcached")
    assert nova_is_up(region, "compute", up) and not nova_is_up(region, "compute", down)
    # Nova's mc driver never writes the database: nor does cellctl's
    (row,) = [r for r in cell.rows(cell.cell_url, "services") if r["host"] == up]
    assert row["last_seen_up"] is None and row["report_count"] == 0

    found, result = states(cell, conf)
    assert found == {up: "up", down: "down", forced: "forced down"}
    assert result.stderr == ""
    assert service_states(cell, conf) == {up: "up", down: "down", forced: "down"}
    # the same cloud under the db driver: created just now, so all up but the forced one
    assert states(cell, None)[0] == {up: "up", down: "up", forced: "forced down"}


@pytest.mark.memcached
def test_mc_heartbeat_of_novas_client_reads_up(cell: Any, memcached_server: str,
                                              tmp_path: Path) -> None:
    from cellctl.clock import utcnow

    up, down, _ = cell.hosts
    nova_region([memcached_server], "dogpile.cache.pymemcache").set(f"compute:{up}", utcnow())
    conf = mc_conf(tmp_path, memcached_server, "dogpile.cache.pymemcache")
    found, _ = states(cell, conf)
    assert (found[up], found[down]) == ("up", "down")


@pytest.mark.memcached
@pytest.mark.parametrize("dead", ["closed", "black hole"])
def test_mc_unreachable_is_unknown_never_down_one_warning_bounded(cell: Any, tmp_path: Path,
                                                                  dead: str) -> None:
    up, down, forced = cell.hosts
    with (closed_port() if dead == "closed" else black_hole()) as port:
        conf = mc_conf(tmp_path, f"127.0.0.1:{port}")
        started = time.monotonic()
        found, result = states(cell, conf)
        elapsed = time.monotonic() - started
        listed = service_states(cell, conf)
    assert found == {up: "unknown", down: "unknown", forced: "forced down"}
    assert listed == {up: "unknown", down: "unknown", forced: "down"}
    warnings = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(warnings) == 1, warnings
    assert warnings[0]["message"].startswith(f"memcached 127.0.0.1:{port} ")
    assert elapsed < 12  # the 5 s probe budget, once


@pytest.mark.memcached
def test_mc_hostile_value_through_the_cli(cell: Any, memcached_server: str,
                                          tmp_path: Path) -> None:
    import pickle

    from pymemcache.client.base import Client

    up, down, _ = cell.hosts
    proof = tmp_path / "pwned"

    class Hostile:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(proof), "w"))

    client = Client(memcached_server, default_noreply=False)
    client.set(cache_key("compute", up), pickle.dumps(Hostile(), 0), flags=1)
    client.set(cache_key("compute", down), heartbeat_value(0), flags=1)
    client.close()
    found, result = states(cell, mc_conf(tmp_path, memcached_server))
    assert not proof.exists()
    assert (found[up], found[down]) == ("unknown", "up")
    assert f"compute:{up}" in result.stderr and "not unpickled" in result.stderr


@pytest.mark.memcached
def test_mc_heartbeat_with_memcached_down_fails_with_one_line(cell: Any, tmp_path: Path) -> None:
    with closed_port() as port:
        result = cell.run("--config-file", mc_conf(tmp_path, f"127.0.0.1:{port}"), "service",
                          "heartbeat", "--host", cell.hosts[0], "--count", "1")
    assert result.exit_code != 0
    assert result.stderr.startswith(f"ERROR: memcached 127.0.0.1:{port} ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.zookeeper
def test_zk_heartbeat_process_up_then_killed_drops_out(cell: Any, zookeeper_server: str,
                                                       zk_prefix: str, tmp_path: Path) -> None:
    up, down, forced = cell.hosts
    conf = zk_conf(tmp_path, zookeeper_server, zk_prefix)
    beats = [cellctl_process(cell, "--config-file", conf, "service", "heartbeat",
                             "--host", host, "--interval", "1") for host in (up, down)]
    try:
        deadline = time.monotonic() + 20
        while states(cell, conf)[0] != {up: "up", down: "up", forced: "forced down"}:
            assert time.monotonic() < deadline, "heartbeats did not join"
            time.sleep(0.3)
        assert service_states(cell, conf) == {up: "up", down: "up", forced: "down"}
        beats[0].send_signal(signal.SIGTERM)  # stopped: its session closes, out at once
        beats[0].wait(10)
        assert states(cell, conf)[0][up] == "down"
        beats[1].kill()  # killed: out when its session expires (4 s)
        beats[1].wait(10)
        killed = time.monotonic()
        while states(cell, conf)[0][down] == "up":
            assert time.monotonic() - killed < 20, "a killed heartbeat stayed up"
            time.sleep(0.3)
        assert time.monotonic() - killed > 1.5  # the session outlived the process a while
    finally:
        for beat in beats:
            if beat.poll() is None:
                beat.kill()
                beat.wait(10)


@pytest.mark.zookeeper
def test_zk_unreachable_is_unknown_one_warning(cell: Any, tmp_path: Path) -> None:
    up, down, forced = cell.hosts
    with black_hole() as port:
        conf = zk_conf(tmp_path, f"127.0.0.1:{port}", "/servicegroups")
        started = time.monotonic()
        found, result = states(cell, conf)
    assert time.monotonic() - started < 12
    assert found == {up: "unknown", down: "unknown", forced: "forced down"}
    (warning,) = [json.loads(line)["message"] for line in result.stderr.splitlines()]
    assert warning.startswith(f"ZooKeeper 127.0.0.1:{port} (sg_prefix /servicegroups)")


def test_driver_from_environment_and_bad_driver(cell: Any, tmp_path: Path) -> None:
    conf = mc_conf(tmp_path, "127.0.0.1:1")
    # the environment wins over the file: db here, whatever the file says
    result = cell.run("--config-file", conf, "--format", "json", "list_hosts", "--status",
                      env={"CELLCTL_SERVICEGROUP_DRIVER": "db"})
    assert result.exit_code == 0 and result.stderr == ""
    assert {r["state"] for r in json.loads(result.stdout)} == {"up", "forced down"}
    bad = cell.run("list_hosts", "--status", env={"CELLCTL_SERVICEGROUP_DRIVER": "redis"})
    assert bad.exit_code != 0
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("ERROR: ") and "servicegroup_driver" in line and "'redis'" in line
    assert "CELLCTL_SERVICEGROUP_DRIVER" in line


@pytest.mark.memcached
def test_mc_black_hole_over_three_cells_costs_the_budget_once(sqlite_cloud: Any,
                                                              tmp_path: Path) -> None:
    cloud = sqlite_cloud
    setup_cells(cloud, extra_cells=2)
    hosts = []
    for n, url in enumerate(cloud.cell_urls):
        hosts.append(f"c{n}-{uuid.uuid4().hex[:6]}")
        add_hosts(url, [hosts[-1]])
    cloud.ok("discover_hosts")
    with black_hole() as port:
        conf = mc_conf(tmp_path, f"127.0.0.1:{port}")
        started = time.monotonic()
        found, result = states(cloud, conf)
        elapsed = time.monotonic() - started
    assert found == dict.fromkeys(hosts, "unknown")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert elapsed < 10, elapsed  # cells are judged in parallel: one 5 s wait, not three
