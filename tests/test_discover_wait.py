"""``discover_hosts --wait-for/--expect``: hosts registered by other processes while it
waits, the timeout, ``--up``, and one query per cell per poll; on every backend."""

from __future__ import annotations

import datetime
import json
import time

import pytest
import sqlalchemy as sa
from hostsupport import add_hosts, cellctl_process, host_mappings, setup_cells

from cellctl.cells.refs import CellRef
from cellctl.cells.waiting import WaitSpec, wait_for_computes
from cellctl.clock import utcnow
from cellctl.db import Databases
from cellctl.settings import resolve

FAST = ("--interval", "0.2")


def test_waits_for_hosts_another_process_registers(cloud):
    cell1, cell2 = setup_cells(cloud, extra_cells=1)
    add_hosts(cloud.cell_url, ["early"])
    cloud.ok("discover_hosts")
    waiting = cellctl_process(cloud, "discover_hosts", "--expect", "early,late1",
                              "--expect", "late2", "--timeout", "90", *FAST, "--format", "json")
    time.sleep(1.0)
    assert waiting.poll() is None  # still waiting for late1 and late2
    for host, url in (("late1", cloud.cell_url), ("late2", cloud.cell_urls[1])):
        register = cellctl_process(cloud, "service", "register", "--host", host,
                                   "--database_connection", url)
        out, err = register.communicate(timeout=60)
        assert register.returncode == 0, (out, err)
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, (out, err)
    data = json.loads(out)
    statuses = {h["host"]: (h["status"], h["cell_uuid"]) for h in data["hosts"]}
    assert statuses == {"early": ("already mapped", cell1), "late1": ("newly mapped", cell1),
                        "late2": ("newly mapped", cell2)}
    assert (data["missing"], data["timed_out"]) == ([], False)
    assert host_mappings(cloud) == {"early": cell1, "late1": cell1, "late2": cell2}


def test_wait_for_a_count(cloud):
    (cell1,) = setup_cells(cloud)
    waiting = cellctl_process(cloud, "discover_hosts", "--wait-for", "3", "--timeout", "90",
                              *FAST, "--format", "json")
    add_hosts(cloud.cell_url, ["a", "b"])
    time.sleep(0.6)
    assert waiting.poll() is None
    add_hosts(cloud.cell_url, ["c"])
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, (out, err)
    data = json.loads(out)
    assert data["found"] == 3 and data["hosts_mapped"] == 3
    assert host_mappings(cloud) == dict.fromkeys("abc", cell1)


def test_timeout_is_exit_3_naming_the_missing_and_maps_what_came(cloud):
    (cell1,) = setup_cells(cloud)
    add_hosts(cloud.cell_url, ["here"])
    add_hosts(cloud.cell_url, ["nodeless"], with_nodes=False)  # discovery maps nodes
    started = time.monotonic()
    result = cloud.run("discover_hosts", "--expect", "here,ghost,nodeless", "--timeout", "1",
                       *FAST, "--format", "json")
    assert time.monotonic() - started < 30
    assert result.exit_code == 3, result.stderr
    data = json.loads(result.stdout)
    assert data["missing"] == ["ghost", "nodeless"] and data["timed_out"] is True
    assert {h["host"]: h["status"] for h in data["hosts"]} == {
        "here": "newly mapped", "ghost": "missing", "nodeless": "missing"}
    error = [json.loads(line) for line in result.stderr.splitlines()][-1]
    assert error["level"] == "error" and "ghost, nodeless" in error["message"]
    assert host_mappings(cloud) == {"here": cell1}
    # --by-service counts a service without a node.
    assert cloud.run("discover_hosts", "--expect", "nodeless", "--by-service",
                     "--timeout", "5", *FAST).exit_code == 0


def test_up_waits_for_the_service_group_to_see_the_host_alive(cloud):
    setup_cells(cloud)
    long_ago = utcnow() - datetime.timedelta(hours=1)
    add_hosts(cloud.cell_url, ["sleepy"], created_at=long_ago)
    down = cloud.run("discover_hosts", "--expect", "sleepy", "--up", "--timeout", "0.5", *FAST)
    assert down.exit_code == 3 and "registered and up" in down.stdout  # errors: stdout
    assert cloud.run("discover_hosts", "--expect", "sleepy", "--timeout", "0.5",
                     *FAST).exit_code == 0  # registered it is
    cloud.ok("service", "heartbeat", "--host", "sleepy", "--count", "1")
    assert cloud.run("discover_hosts", "--expect", "sleepy", "--up", "--timeout", "5",
                     *FAST).exit_code == 0


def test_options_that_need_a_wait_are_usage_errors(cloud):
    setup_cells(cloud)
    assert cloud.run("discover_hosts", "--up").exit_code == 2
    assert cloud.run("discover_hosts", "--timeout", "3").exit_code == 2
    assert cloud.run("discover_hosts", "--wait-for", "1", "--expect", "a").exit_code == 2


@pytest.mark.parametrize("hosts", [5, 400])
def test_one_query_per_cell_per_poll_whatever_the_host_count(cloud, hosts):
    setup_cells(cloud, extra_cells=1)
    names = [f"h{i:04d}" for i in range(hosts)]
    add_hosts(cloud.cell_url, names[: hosts // 2])
    add_hosts(cloud.cell_urls[1], names[hosts // 2 :])
    settings = resolve(api_database_connection=cloud.api_url,
                       database_connection=cloud.cell_url, transport_url=cloud.transport_url)
    statements: list[str] = []
    with Databases(settings) as dbs:
        engine = sa.create_engine(cloud.api_url)
        with engine.connect() as conn:
            cells = [CellRef(r.id, r.uuid, r.name, r.database_connection)
                     for r in conn.execute(sa.text(
                         "SELECT id, uuid, name, database_connection FROM cell_mappings"))]
        engine.dispose()
        for cell in cells:
            sa.event.listen(dbs.cell(cell.database_connection), "before_cursor_execute",
                            lambda *args: statements.append(args[2]))
        for spec in (WaitSpec(expect=(*names, "absent"), timeout=0.5, interval=0.1),
                     WaitSpec(count=hosts + 1, timeout=0.5, interval=0.1)):
            statements.clear()
            waited = wait_for_computes(dbs, cells, spec, by_service=False)
            assert not waited.satisfied and len(waited.found) == hosts
            queries = [s for s in statements if "services" in s]
            assert len(queries) == 2 * waited.polls and waited.polls >= 3
