"""Every command that spans cells keeps going past a dead cell: list_hosts --status,
service list, discover_hosts and status, with the cell's server refusing connections
(closed port), crashed (killed) or stopped (frozen, accepting but never answering).

Each command runs as a real process with a time limit, so a command that hangs on a
dead cell fails its test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from hostsupport import add_hosts, host_mappings, map_host
from servers import PASSWORD, closed_port, run_frozen_after_probe

# Each command's reading of a dead cell: (exit code, what its JSON stdout shows).
COMMANDS = {
    "list_hosts": ["list_hosts", "--status"],
    "service_list": ["service", "list"],
    "discover_hosts": ["discover_hosts"],
    "status": ["status", "--timeout", "1"],
}


def run_process(cloud, *args, limit=30):
    """``cellctl --format json ARGS`` as a process; the wall time it took."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "cellctl", "--format", "json", *args],
                          env={**os.environ, **cloud.env}, capture_output=True, text=True,
                          timeout=limit)
    return done, time.monotonic() - started


def create_cell(cloud, name, url, transport):
    result = cloud.ok("create_cell", "--name", name, "--database_connection", url,
                      "--transport-url", transport, "--verbose")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def two_cells(sqlite_cloud):
    """cell1 (SQLite, healthy) with host 'near' up and mapped, and 'new' not yet mapped."""
    cloud = sqlite_cloud
    cloud.ok("api_db", "sync")
    cloud.ok("map_cell0")
    cloud.ok("db", "sync")
    cloud.cell1 = create_cell(cloud, "cell1", cloud.cell_url, "memory:///")
    add_hosts(cloud.cell_url, ["near", "new"])
    map_host(cloud, "near", cloud.cell1)
    return cloud


def add_remote_cell(cloud, url):
    """Cell 'remote' at ``url`` (synced when reachable) with host 'far' mapped."""
    remote = create_cell(cloud, "remote", url, "memory:///remote")
    map_host(cloud, "far", remote)
    return remote


def check_outcome(cloud, command, done, remote, secret):
    warnings = [json.loads(line) for line in done.stderr.splitlines()]
    assert [w["unreachable_cells"] for w in warnings if "unreachable_cells" in w] == [[remote]]
    assert any(remote in w["message"] for w in warnings if w["level"] == "warning")
    assert secret not in done.stdout + done.stderr
    payload = json.loads(done.stdout)
    if command == "list_hosts":
        assert done.returncode == 0
        assert payload == [
            {"cell_name": "remote", "cell_uuid": remote, "hostname": "far", "state": "unknown"},
            {"cell_name": "cell1", "cell_uuid": cloud.cell1, "hostname": "near", "state": "up"},
        ]
    elif command == "service_list":
        assert done.returncode == 0
        assert [(s["cell_uuid"], s["host"], s["state"]) for s in payload] == [
            (cloud.cell1, "near", "up"), (cloud.cell1, "new", "up")]
    elif command == "discover_hosts":
        assert done.returncode == 1
        assert payload["hosts_mapped"] == 1
        assert payload["unreachable_cells"] == [remote]
        assert host_mappings(cloud) == {"near": cloud.cell1, "new": cloud.cell1, "far": remote}
    else:
        assert done.returncode == 2
        assert payload["unreachable_cells"] == [remote]
        assert payload["checks"][2]["result"] == "failure"


@pytest.mark.parametrize("command", COMMANDS)
def test_cell_on_closed_port(two_cells, command):
    secret = "cl0sed-secret"
    with closed_port() as port:
        remote = add_remote_cell(two_cells,
                                 f"mysql+pymysql://nova:{secret}@127.0.0.1:{port}/nova")
        done, _ = run_process(two_cells, *COMMANDS[command])
    check_outcome(two_cells, command, done, remote, secret)


def remote_cell_on(server, cloud):
    """Cell 'remote' in a new database on ``server``, synced, with host 'far' there."""
    url = server.create_database(f"cellctl_t_{uuid.uuid4().hex[:10]}")
    synced = cloud.run("db", "sync", env={"CELLCTL_DATABASE_CONNECTION": url})
    assert synced.exit_code == 0, synced.stderr
    add_hosts(url, ["far"])
    return add_remote_cell(cloud, url)


@pytest.mark.parametrize("command", COMMANDS)
def test_cell_whose_server_was_killed(two_cells, throwaway_mariadb, command):
    remote = remote_cell_on(throwaway_mariadb, two_cells)
    throwaway_mariadb.kill()

    done, _ = run_process(two_cells, *COMMANDS[command])

    check_outcome(two_cells, command, done, remote, PASSWORD)


@pytest.mark.parametrize("command", COMMANDS)
def test_cell_whose_server_was_stopped_costs_a_bounded_wait(two_cells, throwaway_mariadb,
                                                            command):
    """A stopped (SIGSTOP) server: the kernel accepts connections, nobody answers."""
    remote = remote_cell_on(throwaway_mariadb, two_cells)
    throwaway_mariadb.freeze()

    done, elapsed = run_process(two_cells, *COMMANDS[command])

    check_outcome(two_cells, command, done, remote, PASSWORD)
    assert elapsed < 12, elapsed  # start-up, and the probe's timeout and grace once


@pytest.mark.parametrize("command", COMMANDS)
def test_cell_server_stopped_after_answering_the_probe(two_cells, throwaway_mariadb,
                                                       monkeypatch, command):
    """The server stops (SIGSTOP) once its probe has answered: the command's reads go to
    an open connection that never answers, which only a read timeout can give up on.

    Runs in-process, the only way to stop the server at that point; the timeout is
    shortened from 60 s to keep the test short, and a worker thread with a time
    limit keeps a hang from hanging the suite.
    """
    from types import SimpleNamespace

    remote = remote_cell_on(throwaway_mariadb, two_cells)
    result, elapsed, frozen = run_frozen_after_probe(
        monkeypatch, throwaway_mariadb,
        lambda: two_cells.run("--format", "json", *COMMANDS[command]))

    assert frozen
    assert result is not None, "the command did not finish"
    assert elapsed < 15, elapsed  # the probe, then the shortened timeout once or twice
    done = SimpleNamespace(returncode=result.exit_code, stdout=result.stdout,
                           stderr=result.stderr)
    check_outcome(two_cells, command, done, remote, PASSWORD)
    assert "timed out" in result.stderr
