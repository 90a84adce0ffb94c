"""``cell ensure``: created / updated / unchanged, conflicts after template expansion,
cell0, and two real processes racing for one name; on every backend."""

from __future__ import annotations

import json

import pytest
from hostsupport import cellctl_process

CELL0 = "00000000-0000-0000-0000-000000000000"
TEMPLATE_DB = "{scheme}://{username}:{password}@{hostname}/{path}"
TEMPLATE_MQ = "{scheme}://{username}:{password}@{hostname}:{port}/"


@pytest.fixture
def api(cloud):
    cloud.ok("api_db", "sync")
    return cloud


def ensure(cloud, *args, env=None):
    result = cloud.run("cell", "ensure", "--format", "json", *args, env=env)
    return result.exit_code, json.loads(result.stdout) if result.stdout else None, result


def test_created_then_unchanged_then_updated_exactly_the_fields_given(api):
    args = ("--name", "cell1", "--transport-url", "rabbit://u:secret@mq1:5672/",
            "--database_connection", "mysql+pymysql://nova:dbpw@db1/nova")
    code, data, _ = ensure(api, *args)
    assert code == 10 and data["outcome"] == "created"
    assert data["changed"] == ["transport_url", "database_connection", "disabled"]
    assert "secret" not in json.dumps(data)  # masked
    (row,) = api.api_rows("cell_mappings")
    assert (row["name"], row["uuid"], bool(row["disabled"])) == ("cell1", data["uuid"], False)
    assert row["transport_url"] == "rabbit://u:secret@mq1:5672/"

    code, again, _result = ensure(api, *args)
    assert (code, again["outcome"], again["changed"], again["uuid"]) == (
        0, "unchanged", [], data["uuid"])
    assert api.api_rows("cell_mappings")[0]["updated_at"] is None  # nothing written

    code, updated, _ = ensure(api, "--name", "cell1", "--disabled",
                              "--transport-url", "rabbit://u:secret@mq9:5672/")
    assert (code, updated["outcome"], updated["changed"]) == (
        11, "updated", ["disabled", "transport_url"])
    (row,) = api.api_rows("cell_mappings")
    assert row["transport_url"] == "rabbit://u:secret@mq9:5672/"
    assert row["database_connection"] == "mysql+pymysql://nova:dbpw@db1/nova"  # not given: kept
    assert bool(row["disabled"]) is True

    # Table output says which, one line.
    table = api.run("cell", "ensure", "--name", "cell1", "--enabled")
    assert table.exit_code == 11
    assert table.stdout == f"updated (disabled): cell 'cell1' {data['uuid']}\n"


def test_urls_come_from_the_config_only_when_asked(api):
    code, _, result = ensure(api, "--name", "cell1")
    assert code == 1 and "--transport-url and --database_connection" in result.stderr
    assert api.api_rows("cell_mappings") == []
    code, data, _ = ensure(api, "--name", "cell1", "--from-config")
    assert code == 10
    (row,) = api.api_rows("cell_mappings")
    assert (row["transport_url"], row["database_connection"]) == (
        api.transport_url, api.cell_url)
    # An existing cell keeps its URLs when none is given (update_cell would copy the config).
    code, data, _ = ensure(api, "--name", "cell1", env={"CELLCTL_TRANSPORT_URL": "memory:///x"})
    assert (code, data["outcome"]) == (0, "unchanged")
    assert api.api_rows("cell_mappings")[0]["transport_url"] == api.transport_url


def test_conflicts_are_found_after_expanding_templates_on_both_sides(api):
    env = {"CELLCTL_DATABASE_CONNECTION": "mysql+pymysql://nova:pw@dbhost/nova",
           "CELLCTL_TRANSPORT_URL": "rabbit://guest:pw@mqhost:5672/"}
    code, first, _ = ensure(api, "--name", "cell1", "--database_connection", TEMPLATE_DB,
                            "--transport-url", TEMPLATE_MQ, env=env)
    assert code == 10
    (row,) = api.api_rows("cell_mappings")
    assert row["database_connection"] == TEMPLATE_DB  # stored as given
    # Nova bug 1923899: the literal URL the template expands to is the same database.
    code, data, result = ensure(api, "--name", "cell2", "--transport-url", "rabbit://o:p@other/",
                                "--database_connection", "mysql+pymysql://other:x@DBHOST/nova",
                                env=env)
    assert code == 3, result.stderr
    assert data["conflict"] == {"uuid": first["uuid"], "name": "cell1", "kind": "database"}
    assert first["uuid"] in result.stderr and "cell 'cell1'" in result.stderr
    # The same queue through a template on the new side.
    code, data, _ = ensure(api, "--name", "cell2", "--transport-url", TEMPLATE_MQ,
                           "--database_connection", "mysql+pymysql://nova:pw@dbhost/nova2",
                           env=env)
    assert (code, data["conflict"]["kind"]) == (3, "queue")
    assert len(api.api_rows("cell_mappings")) == 1
    # Another virtual host on the same server is another queue.
    code, _, _ = ensure(api, "--name", "cell2", "--transport-url", "rabbit://a:b@mqhost:5672/c2",
                        "--database_connection", "mysql+pymysql://nova:pw@dbhost/nova2",
                        env=env)
    assert code == 10
    # A cell is no conflict with itself: re-ensuring cell1 with the literal URLs updates it.
    code, data, _ = ensure(api, "--name", "cell1", "--database_connection",
                           "mysql+pymysql://nova:pw@dbhost/nova", env=env)
    assert (code, data["changed"]) == (11, ["database_connection"])


def test_cell0(api):
    code, data, _ = ensure(api, "--name", "cell0", "--from-config")
    assert (code, data["uuid"]) == (10, CELL0)
    (row,) = api.api_rows("cell_mappings")
    assert row["transport_url"] == "none:///"
    assert row["database_connection"] != api.cell_url and "_cell0" in row["database_connection"]
    assert ensure(api, "--name", "cell0", "--from-config")[0] == 0
    assert ensure(api, "--name", "cell0", "--disabled")[0] == 1
    assert ensure(api, "--name", "cell0", "--transport-url", "rabbit://x@y/")[0] == 1
    # A cell0 given a queue (nova-operator's update_cell bug) is put right.
    api.execute(api.api_url, "UPDATE cell_mappings SET transport_url = 'rabbit://'")
    code, data, _ = ensure(api, "--name", "cell0")
    assert (code, data["changed"]) == (11, ["transport_url"])
    assert api.api_rows("cell_mappings")[0]["transport_url"] == "none:///"


def test_bad_input_and_ambiguous_names(api):
    assert ensure(api, "--name", "c", "--transport-url", "rabit://x@y/",
                  "--database_connection", "sqlite:////tmp/x.db")[0] == 1
    assert api.api_rows("cell_mappings") == []
    api.ok("create_cell", "--name", "twin", "--transport-url", "memory:///a",
           "--database_connection", "sqlite:////tmp/a.db")
    api.ok("create_cell", "--name", "twin", "--transport-url", "memory:///b",
           "--database_connection", "sqlite:////tmp/b.db")
    code, _, result = ensure(api, "--name", "twin", "--disabled")
    assert code == 9
    uuids = [r["uuid"] for r in api.api_rows("cell_mappings")]
    assert all(u in result.stderr for u in uuids)
    assert not any(r["disabled"] for r in api.api_rows("cell_mappings"))


def test_two_processes_racing_for_one_name_leave_one_cell(api):
    args = ["cell", "ensure", "--name", "raced", "--format", "json", "--transport-url",
            "rabbit://u:p@mq:5672/", "--database_connection", api.cell_url]
    for _ in range(3):
        procs = [cellctl_process(api, *args) for _ in range(2)]
        outcomes = [proc.communicate(timeout=120) for proc in procs]
        codes = sorted(proc.returncode for proc in procs)
        assert all("Traceback" not in out + err for out, err in outcomes)
        assert codes == [0, 10], outcomes  # one created it, the other found it
        rows = api.api_rows("cell_mappings")
        assert [r["name"] for r in rows] == ["raced"]
        assert {json.loads(out)["uuid"] for out, _ in outcomes} == {rows[0]["uuid"]}
        api.execute(api.api_url, "DELETE FROM cell_mappings")
