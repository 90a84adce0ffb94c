"""map_instances through the CLI: what gets mapped, in which order, and resumption."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest
from instance_helpers import (
    BASE_TIME,
    add_instances,
    dead_cell,
    instance_mappings,
    mapped_cell,
    markers,
    nova_order,
    put_marker,
)

import cellctl.mappings.cell_instances
from cellctl.tables.cell import instances


def run_map(cloud, cell, *args):
    return cloud.run("map_instances", "--cell_uuid", cell, *args)


def test_maps_every_instance_with_its_owner(cloud):
    """Deleted instances are mapped (queued for delete, as Nova's API marks them), hidden
    ones are not; project and user are copied; nothing printed; no marker left."""
    cell = mapped_cell(cloud)
    live = add_instances(cloud, 3)
    (deleted,) = add_instances(cloud, 1, vm_state="deleted")
    cloud.execute(cloud.cell_url, "UPDATE instances SET deleted = id WHERE uuid = :u",
                  {"u": deleted})
    (soft,) = add_instances(cloud, 1, vm_state="soft-delete")
    (unhidden,) = add_instances(cloud, 1, hidden=None)
    add_instances(cloud, 1, hidden=True)

    result = run_map(cloud, cell)

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    found = instance_mappings(cloud)
    assert set(found) == {*live, deleted, soft, unhidden}
    cell_id = next(r["id"] for r in cloud.api_rows("cell_mappings") if r["uuid"] == cell)
    instances = {r["uuid"]: r for r in cloud.rows(cloud.cell_url, "instances")}
    for instance_uuid, mapping in found.items():
        assert mapping["cell_id"] == cell_id
        assert mapping["project_id"] == instances[instance_uuid]["project_id"]
        assert mapping["user_id"] == instances[instance_uuid]["user_id"]
        assert mapping["created_at"] is not None
        assert bool(mapping["queued_for_delete"]) == (instance_uuid in (deleted, soft))
    assert markers(cloud) == []


def test_cell_v2_alias_and_option_prefix(sqlite_cloud):
    cell = mapped_cell(sqlite_cloud)
    add_instances(sqlite_cloud, 2)
    result = sqlite_cloud.run("cell_v2", "map_instances", "--cell", cell, "--max", "1")
    assert result.exit_code == 1, result.output
    assert len(instance_mappings(sqlite_cloud)) == 1


def test_already_mapped_instances_are_skipped(cloud_no_pg):
    cloud = cloud_no_pg
    cell = mapped_cell(cloud)
    first, *_ = add_instances(cloud, 4)
    cloud.execute(cloud.api_url,
                  "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id, user_id) "
                  "VALUES (:u, NULL, 'someone', 'else')", {"u": first})

    result = run_map(cloud, cell, "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) | {"cell_uuid": None} == {
        "cell_uuid": None, "processed": 4, "mapped": 3, "already_mapped": 1,
        "without_project": 0, "more": False, "marker": None, "exit_code": 0}
    found = instance_mappings(cloud)
    assert len(found) == 4
    assert found[first]["project_id"] == "someone"  # an existing mapping is left alone


def test_max_count_resumes_in_nova_order(cloud_no_pg):
    """Facts scenario 21 with the SPEC's rule: oldest first by (created_at, id), the marker
    after each bounded run, 0 once nothing remains."""
    cloud = cloud_no_pg
    cell = mapped_cell(cloud)
    # created_at out of id order, and a tie that id must break.
    add_instances(cloud, 5, created_at=[30, 10, 20, 10, 40])
    order = nova_order(cloud)

    steps = [(["--max-count", "3"], 1, order[2], order[:3]),
             (["--max-count", "2", "--reset"], 1, order[1], order[:3]),
             (["--max-count", "2"], 1, order[3], order[:4]),
             (["--max-count", "4", "--reset"], 1, order[3], order[:4]),
             ([], 0, None, order)]
    for args, code, marker, mapped in steps:
        result = run_map(cloud, cell, *args)
        assert result.exit_code == code, (args, result.output)
        assert markers(cloud) == ([marker] if marker else []), args
        assert set(instance_mappings(cloud)) == set(mapped), args


@pytest.mark.parametrize(("count", "max_count", "runs"),
                         [(6, 3, [1, 0]), (3, 3, [0]), (7, 3, [1, 1, 0]), (2, 5, [0])])
def test_exit_1_only_while_instances_remain(sqlite_cloud, count, max_count, runs):
    cell = mapped_cell(sqlite_cloud)
    add_instances(sqlite_cloud, count)
    codes = [run_map(sqlite_cloud, cell, "--max-count", str(max_count)).exit_code
             for _ in runs]
    assert codes == runs
    assert len(instance_mappings(sqlite_cloud)) == count
    assert markers(sqlite_cloud) == []
    # With no marker a further run starts over, as nova-manage's does, and maps nothing.
    again = run_map(sqlite_cloud, cell, "--max-count", str(max_count), "--format", "json")
    assert json.loads(again.stdout)["mapped"] == 0


@pytest.mark.parametrize("value", ["0", "-1", "abc", "", "1.5"])
def test_bad_max_count_is_127_and_changes_nothing(sqlite_cloud, value):
    cell = mapped_cell(sqlite_cloud)
    add_instances(sqlite_cloud, 2)
    put_marker(sqlite_cloud, str(uuid.uuid4()))
    result = run_map(sqlite_cloud, cell, f"--max-count={value}")
    assert result.exit_code == 127
    assert "Must supply a positive value for max-count" in result.stdout  # as nova-manage
    assert instance_mappings(sqlite_cloud) == {}
    assert len(markers(sqlite_cloud)) == 1


@pytest.mark.parametrize("cell", ["not-a-uuid", "7d4f0a3c-4a56-4b4e-9a8e-0c4d2b1f9e11"])
def test_unknown_or_malformed_cell_is_255(sqlite_cloud, cell):
    """As nova-manage (CellMappingNotFound): 255, its crash prefix, one line after it."""
    mapped_cell(sqlite_cloud)
    add_instances(sqlite_cloud, 2)
    result = run_map(sqlite_cloud, cell)
    assert result.exit_code == 255
    assert result.stdout == (
        f"An error has occurred:\nCellMappingNotFound: Cell {cell} has no mapping.\n")
    assert instance_mappings(sqlite_cloud) == {}


def test_unreachable_cell_database_is_255(sqlite_cloud):
    result = run_map(sqlite_cloud, dead_cell(sqlite_cloud))
    assert result.exit_code == 255
    assert len(result.stdout.strip().splitlines()) == 1
    assert "secretpw" not in result.output
    assert "Traceback" not in result.output


def test_resumes_from_a_marker_nova_manage_left(cloud_no_pg):
    """A marker written by nova-manage (dashes as spaces) is honoured, then moved."""
    cloud = cloud_no_pg
    cell = mapped_cell(cloud)
    add_instances(cloud, 6, created_at=[5, 4, 3, 2, 1, 0])
    order = nova_order(cloud)
    put_marker(cloud, order[1])

    result = run_map(cloud, cell, "--max-count", "2")

    assert result.exit_code == 1
    assert set(instance_mappings(cloud)) == set(order[2:4])
    (row,) = [r for r in cloud.api_rows("instance_mappings")
              if r["project_id"] == "INSTANCE_MIGRATION_MARKER"]
    assert row["instance_uuid"] == order[3].replace("-", " ")
    assert row["user_id"] == "INSTANCE_MIGRATION_MARKER"
    assert row["cell_id"] is None
    assert not row["queued_for_delete"]

    # Without --max-count it finishes from there; --reset then picks up the first two.
    assert run_map(cloud, cell).exit_code == 0
    assert set(instance_mappings(cloud)) == set(order[2:])
    assert markers(cloud) == []
    assert run_map(cloud, cell, "--reset").exit_code == 0
    assert set(instance_mappings(cloud)) == set(order)


def test_marker_from_another_cell_starts_over_with_a_warning(sqlite_cloud):
    cell = mapped_cell(sqlite_cloud)
    instances = add_instances(sqlite_cloud, 3)
    elsewhere = str(uuid.uuid4())
    put_marker(sqlite_cloud, elsewhere)

    result = run_map(sqlite_cloud, cell)

    assert result.exit_code == 0
    assert f"instance {elsewhere}" in result.stderr and "WARNING" in result.stderr
    assert set(instance_mappings(sqlite_cloud)) == set(instances)
    assert markers(sqlite_cloud) == []


def test_reset_ignores_the_marker_until_the_first_batch_commits(sqlite_cloud):
    cell = mapped_cell(sqlite_cloud)
    add_instances(sqlite_cloud, 4)
    order = nova_order(sqlite_cloud)
    put_marker(sqlite_cloud, order[2])
    put_marker(sqlite_cloud, order[3])  # a second, stray marker goes too

    result = run_map(sqlite_cloud, cell, "--reset", "--max-count", "1")

    assert result.exit_code == 1
    assert set(instance_mappings(sqlite_cloud)) == {order[0]}
    assert markers(sqlite_cloud) == [order[0]]


def test_nothing_to_map_clears_a_finished_marker(sqlite_cloud):
    cell = mapped_cell(sqlite_cloud)
    add_instances(sqlite_cloud, 2)
    order = nova_order(sqlite_cloud)
    put_marker(sqlite_cloud, order[-1])
    result = run_map(sqlite_cloud, cell, "--max-count", "5")
    assert result.exit_code == 0
    assert markers(sqlite_cloud) == []
    assert instance_mappings(sqlite_cloud) == {}  # the marker said they were done; it is trusted


def test_many_batches_commit_with_the_marker(backend, make_cloud, dbfactory, monkeypatch):
    """Across batch boundaries (small batches here) the marker always sits at the last
    committed instance, and bounded runs stop exactly at their count."""
    monkeypatch.setattr(cellctl.mappings.cell_instances, "WRITE_BATCH", 4)
    cloud = make_cloud(dbfactory)
    cell = mapped_cell(cloud)
    add_instances(cloud, 23, created_at=[(n * 7) % 23 for n in range(23)])
    order = nova_order(cloud)

    done = 0
    for max_count, code in [(10, 1), (8, 1), (4, 1), (1, 0)]:
        result = run_map(cloud, cell, "--max-count", str(max_count))
        assert result.exit_code == code, result.output
        done += max_count
        assert set(instance_mappings(cloud)) == set(order[:done])
        assert markers(cloud) == ([order[done - 1]] if code else [])
    assert run_map(cloud, cell).exit_code == 0
    assert len(instance_mappings(cloud)) == 23


def test_instance_without_project_is_reported(sqlite_cloud):
    cell = mapped_cell(sqlite_cloud)
    good = add_instances(sqlite_cloud, 2)
    add_instances(sqlite_cloud, 1, project_id=None)
    result = run_map(sqlite_cloud, cell)
    assert result.exit_code == 0
    assert "1 instance has no project_id" in result.stderr
    assert set(instance_mappings(sqlite_cloud)) == set(good)


def test_mariadb_streams_the_cell_out_of_its_sort(make_cloud, mysql_factory):
    """On MariaDB the ordered read carries its columns through the sort, so streaming it
    reads no row of the table again by position (``Handler_read_rnd`` stays 0): read
    again in sort order, a big cell's table would push the API database's pages out of
    the buffer pool for the whole run."""
    import sqlalchemy as sa

    from cellctl.mappings.cell_order import instances_query, stream

    cloud = make_cloud(mysql_factory)
    mapped_cell(cloud)
    assert len(add_instances(cloud, 30)) == 30
    engine = sa.create_engine(cloud.cell_url)
    try:
        with engine.connect() as conn:
            read = [row[0] for rows in stream(conn, instances_query(conn, None, None), 7)
                    for row in rows]
            (_, by_position), = conn.exec_driver_sql(
                "SHOW SESSION STATUS LIKE 'Handler_read_rnd'").all()
    finally:
        engine.dispose()
    assert read == nova_order(cloud)
    assert int(by_position) == 0


def _head_first(monkeypatch) -> tuple[list[object], list[bool]]:
    """Small batches and head; the places where each run's head ended (None: no split),
    and whether each head had deleted instances to merge."""
    import cellctl.mappings.cell_order

    monkeypatch.setattr(cellctl.mappings.cell_instances, "WRITE_BATCH", 3)
    monkeypatch.setattr(cellctl.mappings.cell_instances, "HEAD_BATCHES", 2)
    ends: list[object] = []
    merged: list[bool] = []
    head_end = cellctl.mappings.cell_order._head_end
    any_deleted = cellctl.mappings.cell_order._any_deleted

    def recorded(*args):
        ends.append(head_end(*args))
        return ends[-1]

    def seen(*args):
        merged.append(any_deleted(*args))
        return merged[-1]

    monkeypatch.setattr(cellctl.mappings.cell_order, "_head_end", recorded)
    monkeypatch.setattr(cellctl.mappings.cell_order, "_any_deleted", seen)
    return ends, merged


def _plant_mixed_order(cloud, *, deletes_late: bool = False) -> list[str]:
    """40 instances whose ids do not follow created_at: equal and NULL created_at,
    every third one deleted (``deleted = id``; with ``deletes_late`` only among the
    newest), two hidden (one of them among the oldest); Nova's order of them."""
    add_instances(cloud, 40, created_at=[(n * 7) % 13 for n in range(40)])
    cloud.execute(cloud.cell_url, "UPDATE instances SET created_at = NULL WHERE MOD(id, 11) = 1")
    late = BASE_TIME + datetime.timedelta(minutes=10 if deletes_late else -1)
    cloud.execute(cloud.cell_url, "UPDATE instances SET deleted = id "
                  "WHERE MOD(id, 3) = 0 AND created_at >= :late", {"late": late})
    cloud.execute(cloud.cell_url, "UPDATE instances SET hidden = 1 WHERE id IN (5, 12)")
    return nova_order(cloud)


@pytest.mark.parametrize("deletes_late", [False, True])
def test_mariadb_reads_a_big_cell_head_first(make_cloud, mysql_factory, monkeypatch,
                                             deletes_late):
    """A cell bigger than the head: its head (its live instances through the index,
    merged with its deleted ones when it has any) comes first, the rest from the
    server's sort on a second connection; the mappings and the marker follow Nova's
    order exactly, whole and in bounded runs, however many of the head's instances
    are hidden."""
    ends, merged = _head_first(monkeypatch)
    cloud = make_cloud(mysql_factory)
    cell = mapped_cell(cloud)
    order = _plant_mixed_order(cloud, deletes_late=deletes_late)

    done = 0
    for max_count, code in [(9, 1), (13, 1)]:
        result = run_map(cloud, cell, "--max-count", str(max_count))
        assert result.exit_code == code, result.output
        done += max_count
        assert set(instance_mappings(cloud)) == set(order[:done])
        assert markers(cloud) == [order[done - 1]]
    assert run_map(cloud, cell).exit_code == 0
    assert set(instance_mappings(cloud)) == set(order)
    assert markers(cloud) == []
    assert [end is not None for end in ends] == [True, True, True], "every run split"
    assert merged[0] is not deletes_late, "the first head merged deleted instances"


def test_mariadb_interrupted_head_first_drops_both_reads(make_cloud, mysql_factory,
                                                           monkeypatch):
    """Interrupted in the head (while the server sorts the rest) and in the rest: exit
    130, no reading thread left behind, and the next run finishes the cell exactly."""
    import threading

    _head_first(monkeypatch)
    cloud = make_cloud(mysql_factory)
    cell = mapped_cell(cloud)
    order = _plant_mixed_order(cloud)
    commit_once = cellctl.mappings.cell_instances._commit_once

    done = 0
    for fail_at in (1, 4):  # the 2nd batch fails (in the head), then the 5th (in the rest)
        calls = []

        def interrupted(*args, fail_at=fail_at, calls=calls):
            calls.append(1)
            if len(calls) > fail_at:
                raise KeyboardInterrupt
            return commit_once(*args)

        monkeypatch.setattr(cellctl.mappings.cell_instances, "_commit_once", interrupted)
        result = run_map(cloud, cell)
        assert result.exit_code == 130, result.output
        assert not [t for t in threading.enumerate() if t.name == "cellctl-prefetch"]
        done += 3 * fail_at
        assert set(instance_mappings(cloud)) == set(order[:done])
        assert markers(cloud) == [order[done - 1]]
        monkeypatch.setattr(cellctl.mappings.cell_instances, "_commit_once", commit_once)
        resumed = run_map(cloud, cell, "--max-count", "1")  # resumes at the marker
        assert resumed.exit_code == 1, resumed.output
        done += 1
        assert set(instance_mappings(cloud)) == set(order[:done])

    assert run_map(cloud, cell).exit_code == 0
    assert set(instance_mappings(cloud)) == set(order)


def test_mariadb_interrupted_while_the_rest_is_sorted_stops_at_once(make_cloud, mysql_factory,
                                                                     monkeypatch):
    """The rest's query still running on the server (made to take 15 s by a ``SLEEP``
    in a derived table, which the server runs once before the first row) does not
    hold up an interrupt in the head: the reading threads stop waiting, the rest's
    connection is ended, and the run exits 130 in seconds; the next run maps the
    cell exactly."""
    import threading
    import time

    import sqlalchemy as sa

    import cellctl.mappings.cell_order

    _head_first(monkeypatch)
    cloud = make_cloud(mysql_factory)
    cell = mapped_cell(cloud)
    order = _plant_mixed_order(cloud)
    instances_query = cellctl.mappings.cell_order.instances_query
    pause = sa.select(sa.func.sleep(15).label("slept")).subquery("pause")

    def slow(*args):  # only the rest's query is built by instances_query on a split
        return instances_query(*args).join_from(instances, pause, sa.true())

    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cellctl.mappings.cell_order, "instances_query", slow)
    monkeypatch.setattr(cellctl.mappings.cell_instances, "_commit_once", interrupted)
    engine = sa.create_engine(cloud.cell_url)
    try:
        started = time.monotonic()
        result = run_map(cloud, cell)
        took = time.monotonic() - started
        with engine.connect() as conn:  # the abandoned query, still sleeping
            sleeping = conn.exec_driver_sql(
                "SELECT id FROM information_schema.processlist "
                "WHERE db = DATABASE() AND state = 'User sleep'").scalars().all()
            for query in sleeping:
                conn.exec_driver_sql(f"KILL QUERY {int(query)}")
    finally:
        engine.dispose()
    assert result.exit_code == 130, result.output
    assert took < 8, f"the interrupt waited {took:.1f} s for the server's sort"
    assert sleeping, "the rest's query was not under way when the run was interrupted"
    assert not [t for t in threading.enumerate() if t.name == "cellctl-prefetch"]

    monkeypatch.undo()
    assert run_map(cloud, cell).exit_code == 0
    assert set(instance_mappings(cloud)) == set(order)
    assert markers(cloud) == []
