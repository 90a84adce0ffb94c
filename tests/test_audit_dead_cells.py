"""audit with a cell that cannot be read: exit 2, the cell named (password masked), the other
cells still audited, and nothing concluded (or repaired) that the dead cell could refute."""

from __future__ import annotations

import json
import uuid

import pytest
from auditsupport import every_kind, insert_mappings
from hostsupport import map_host
from servers import PASSWORD, closed_port, run_frozen_after_probe
from test_dead_cells import create_cell, run_process

SECRET = "d3ad-secret"


def expected_with_dead_cell(scene):
    """What can still be concluded: everything but an instance missing everywhere (the
    dead cell may have it)."""
    return {k: v for k, v in scene.expected.items() if k != "mapping_without_instance"}


def found(payload):
    out: dict[str, set] = {}
    for f in payload["findings"]:
        out.setdefault(f["kind"], set()).add((f["cell_uuid"], f["subject"]))
    return out


def add_dead_cell(cloud, url):
    dead = create_cell(cloud, "dead", url, "memory:///dead")
    # Rows that point at the dead cell: nothing can be said about them.
    insert_mappings(cloud.api_url, dead, [str(uuid.uuid4())])
    map_host(cloud, "far", dead)
    return dead


def check(cloud, scene, dead, done, secret, *, fixed):
    assert done.returncode == 2, done.stderr
    assert secret not in done.stdout + done.stderr
    payload = json.loads(done.stdout)
    assert payload["unreachable_cells"] == [dead]
    assert payload["exit_code"] == 2
    warnings = [json.loads(line) for line in done.stderr.splitlines()]
    assert any(dead in w["message"] and "dead" in w["message"] for w in warnings)
    if not fixed:
        assert found(payload) == expected_with_dead_cell(scene)
        moved = next(f for f in payload["findings"] if f["kind"] == "mapping_in_wrong_cell")
        assert moved["fixable"] is False  # the dead cell might have it too
    else:
        fixable = {k: v for k, v in scene.fixable.items()
                   if k not in ("mapping_without_instance", "mapping_in_wrong_cell")}
        assert payload["fixed"] == {
            "instance_without_mapping": len(fixable["instance_without_mapping"]),
            "mapping_without_instance": 0, "mapping_in_wrong_cell": 0,
            "host_mapping_without_host": 1, "node_mapped_without_host_mapping": 1}
        mapped = {r["instance_uuid"] for r in cloud.api_rows("instance_mappings")}
        assert scene.refs["archived"] in mapped  # not deleted: the dead cell may have it


@pytest.mark.parametrize("fix", [False, True], ids=["report", "fix"])
def test_cell_on_closed_port(cloud_no_pg, fix):
    """SQLite and MariaDB: PostgreSQL adds time here, not coverage (test_audit.py has it)."""
    cloud = cloud_no_pg
    scene = every_kind(cloud)
    with closed_port() as port:
        dead = add_dead_cell(cloud, f"mysql+pymysql://nova:{SECRET}@127.0.0.1:{port}/nova")
        done, _ = run_process(cloud, "audit", *(["--fix"] if fix else []))
    check(cloud, scene, dead, done, SECRET, fixed=fix)


def test_cell_whose_server_was_killed(sqlite_cloud, throwaway_mariadb):
    scene = every_kind(sqlite_cloud)
    url = throwaway_mariadb.create_database(f"cellctl_t_{uuid.uuid4().hex[:10]}")
    synced = sqlite_cloud.run("db", "sync", env={"CELLCTL_DATABASE_CONNECTION": url})
    assert synced.exit_code == 0, synced.stderr
    dead = add_dead_cell(sqlite_cloud, url)
    throwaway_mariadb.kill()

    done, _ = run_process(sqlite_cloud, "audit")

    check(sqlite_cloud, scene, dead, done, PASSWORD, fixed=False)


def test_cell_whose_server_was_stopped_costs_a_bounded_wait(sqlite_cloud, throwaway_mariadb):
    scene = every_kind(sqlite_cloud)
    url = throwaway_mariadb.create_database(f"cellctl_t_{uuid.uuid4().hex[:10]}")
    synced = sqlite_cloud.run("db", "sync", env={"CELLCTL_DATABASE_CONNECTION": url})
    assert synced.exit_code == 0, synced.stderr
    dead = add_dead_cell(sqlite_cloud, url)
    throwaway_mariadb.freeze()

    done, elapsed = run_process(sqlite_cloud, "audit")

    check(sqlite_cloud, scene, dead, done, PASSWORD, fixed=False)
    assert elapsed < 12, elapsed


def test_cell_server_stopped_after_answering_the_probe(sqlite_cloud, throwaway_mariadb,
                                                       monkeypatch):
    """The server stops once its probe has answered: the audit's reads of that cell go
    to an open connection that never answers, and only the read timeout (shortened from
    60 s here) gives up on it; the cell is then lost mid-audit and named, the others
    audited. In-process, the only way to stop the server at that point; a worker thread
    with a time limit keeps a hang from hanging the suite."""
    from types import SimpleNamespace

    scene = every_kind(sqlite_cloud)
    url = throwaway_mariadb.create_database(f"cellctl_t_{uuid.uuid4().hex[:10]}")
    synced = sqlite_cloud.run("db", "sync", env={"CELLCTL_DATABASE_CONNECTION": url})
    assert synced.exit_code == 0, synced.stderr
    dead = add_dead_cell(sqlite_cloud, url)
    result, elapsed, frozen = run_frozen_after_probe(
        monkeypatch, throwaway_mariadb, lambda: sqlite_cloud.run("--format", "json", "audit"))

    assert frozen
    assert result is not None, "the audit did not finish"
    assert elapsed < 20, elapsed
    done = SimpleNamespace(returncode=result.exit_code, stdout=result.stdout,
                           stderr=result.stderr)
    check(sqlite_cloud, scene, dead, done, PASSWORD, fixed=False)
    assert "timed out" in result.stderr
