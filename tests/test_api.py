"""cellctl as a library: the exported names, lazy imports, Databases as a context manager."""

from __future__ import annotations

import subprocess
import sys
from uuid import uuid4

import cellctl
from cellctl.progress import Progress


def test_every_exported_name_resolves_and_is_listed():
    assert set(cellctl.__all__) == {"__version__", *cellctl._EXPORTS}
    for name in cellctl.__all__:
        assert getattr(cellctl, name) is not None, name
    assert "py.typed" in {p.name for p in __import__("pathlib").Path(cellctl.__file__).parent
                          .iterdir()}


def test_import_cellctl_loads_no_database_module():
    code = ("import sys, cellctl\n"
            "print([m for m in ('sqlalchemy', 'alembic', 'kombu', 'cellctl.db', 'cellctl.ops')"
            " if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_unknown_name_is_an_attribute_error():
    try:
        cellctl.no_such_operation  # noqa: B018
    except AttributeError as exc:
        assert "no_such_operation" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def start(self, label: str, total: int | None) -> None:
        self.events.append(("start", label))

    def advance(self, count: int) -> None:
        self.events.append(("advance", count))

    def finish(self) -> None:
        self.events.append(("finish", None))


def test_map_every_cell_from_python(tmp_path, monkeypatch):
    """The upgrade-script path: settings, Databases as a context manager, results as data."""
    monkeypatch.setenv("CELLCTL_STATE_DIR", str(tmp_path))
    settings = cellctl.resolve()
    with cellctl.Databases(settings) as dbs:
        assert cellctl.register_service(dbs, host="compute1").code == 0
        from cellctl.ops.dev import add_instances

        assert add_instances(dbs, count=25).code == 0
        setup = cellctl.simple_cell_setup(dbs)
        assert setup.code == 0, setup.messages
        # simple_cell_setup mapped them already: remap from scratch, reporting progress
        from sqlalchemy import delete

        from cellctl.tables.api import instance_mappings

        with dbs.api.begin() as conn:
            conn.execute(delete(instance_mappings))
        cell = next(row for row in cellctl.list_cells(dbs).table.rows if row["name"] != "cell0")
        progress: Progress = Recorder()
        result = cellctl.map_instances(dbs, cell_uuid=cell["uuid"], progress=progress)
        assert result.code == 0
        assert result.data is not None and result.data["mapped"] == 25
        assert progress.events[0][0] == "start" and progress.events[-1][0] == "finish"
        assert sum(n for kind, n in progress.events if kind == "advance") == 25
        assert cellctl.map_instances(dbs, cell_uuid=cell["uuid"]).data["mapped"] == 0
    # disposed on leaving the block, and usable again afterwards
    assert dbs._engines == {}


def test_messages_name_arguments_as_the_caller_passes_them(tmp_path):
    """From Python a missing URL is asked for by keyword; the CLI keeps nova-manage's flag."""
    api = f"sqlite:///{tmp_path / 'api.sqlite'}"
    unset = {"CELLCTL_TRANSPORT_URL": "", "CELLCTL_DATABASE_CONNECTION": ""}
    settings = cellctl.resolve(api_database_connection=api, default_config_files=[],
                               default_config_dirs=[], environ=unset)
    with cellctl.Databases(settings) as dbs:
        assert cellctl.api_db_sync(dbs).code == 0
        result = cellctl.create_cell(dbs, database_connection=api)
    assert result.code == 1
    assert [m.text for m in result.messages] == [
        "Must specify transport_url= if [DEFAULT]/transport_url is not set in the "
        "configuration file."]
    cli = cellctl.resolve(api_database_connection=api, from_cli=True, default_config_files=[],
                          default_config_dirs=[], environ=unset)
    assert cli.argument("transport_url", "--transport-url") == "--transport-url"
    with cellctl.Databases(settings) as dbs:
        try:
            dbs.local_cell  # noqa: B018
        except cellctl.ConfigError as exc:
            assert str(exc).startswith("No cell database configured: use database_connection=")
        else:
            raise AssertionError("expected ConfigError")


def test_every_operation_takes_databases_then_keywords_only():
    """Named like the command's options, passed by name; numbers typed, not strings."""
    import importlib
    import inspect

    operations = [name for name, module in cellctl._EXPORTS.items()
                  if module.startswith("cellctl.ops")]
    assert "audit" in operations
    for name in operations:
        function = getattr(importlib.import_module(cellctl._EXPORTS[name]), name)
        first, *rest = inspect.signature(function).parameters.values()
        assert first.name == "dbs" and first.annotation == "Databases", name
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest), name
        for param in rest:
            assert "str | int" not in param.annotation, (name, param.name)
            assert "str | float" not in param.annotation, (name, param.name)


def test_bad_arguments_from_python_are_named_as_keywords(tmp_path):
    settings = cellctl.resolve(environ={"CELLCTL_STATE_DIR": str(tmp_path)},
                               default_config_files=[], default_config_dirs=[])
    with cellctl.Databases(settings) as dbs:
        result = cellctl.heartbeat(dbs, host="cmp1", interval=0, count=0)
        dev = cellctl.add_instances(dbs, count=3, node="not-a-uuid", host="cmp1")
        ring = cellctl.ironic_ring(dbs, without=[" "])
        audited = cellctl.audit(dbs, limit=0, build_timeout=-1.0)
        unnamed = cellctl.ensure_cell(dbs, name="")
        registered = cellctl.register_service(dbs, host="cmp1", hypervisor_type="ironic",
                                              node_uuids=[str(uuid4()), "x"])
        moves = [cellctl.ironic_move(dbs, source=" "),
                 cellctl.ironic_move(dbs, source="cmp1"),
                 cellctl.ironic_move(dbs, source="cmp1", destination="CMP1"),
                 cellctl.ironic_move(dbs, source="cmp1", rebalance=True, nodes=["x"])]
    assert result.code == 1
    assert [m.text for m in result.messages] == [
        "interval must be a positive number of seconds, got 0",
        "count must be a positive number, got 0"]
    assert (dev.code, [m.text for m in dev.messages]) == (
        1, ["node= must be an Ironic node UUID, got 'not-a-uuid'"])
    assert (ring.code, [m.text for m in ring.messages]) == (
        1, ["without= must name a host, got ' '"])
    assert (audited.code, [m.text for m in audited.messages]) == (1, [
        "limit= must be a positive integer, not 0",
        "build_timeout= must be a number of seconds (0 or more), not -1.0"])
    assert (unnamed.code, [m.text for m in unnamed.messages]) == (
        1, ["name= must not be empty."])
    assert (registered.code, [m.text for m in registered.messages]) == (
        1, ["node_uuids= must be Ironic node UUIDs, got 'x'"])
    assert [(m.code, [x.text for x in m.messages]) for m in moves] == [
        (1, ["source= must name the host of the nova-compute service to move from"]),
        (1, ["Give exactly one of destination= and rebalance="]),
        (1, ["destination=CMP1 is the source itself"]),
        (1, ["nodes= must be an Ironic node UUID, got 'x'"])]


def _fits(value, typed) -> None:
    """``value`` (a dict) has every key ``typed`` requires and none it does not declare."""
    keys = set(value)
    declared = typed.__required_keys__ | typed.__optional_keys__
    assert typed.__required_keys__ <= keys <= declared, (typed.__name__, sorted(keys))


def test_what_scripts_read_is_what_the_types_declare(tmp_path):
    """Each TypedDict of cellctl.results against what its operation really returns.

    mypy checks that the operations build these values; this checks the other
    side: a key the output gains or loses without its type fails here.
    """
    from cellctl import results as r
    from cellctl.cells.waiting import WaitSpec

    settings = cellctl.resolve(environ={"CELLCTL_STATE_DIR": str(tmp_path)},
                               default_config_files=[], default_config_dirs=[])
    seen: dict[str, set[str]] = {}

    def fits(value, typed) -> None:
        _fits(value, typed)
        seen.setdefault(typed.__name__, set()).update(value)

    with cellctl.Databases(settings) as dbs:
        for version in (cellctl.api_db_version(dbs), cellctl.db_version(dbs)):
            fits(version.data, r.SchemaVersionData)
        for registered in (cellctl.register_service(dbs, host="cmp1"),
                           cellctl.register_service(dbs, host="bm1", hypervisor_type="ironic",
                                                    nodes=2)):
            assert registered.code == 0, registered.messages
            fits(registered.data, r.RegisterServiceData)
        added = cellctl.add_instances(dbs, count=3, host="cmp1")
        assert added.code == 0, added.messages
        fits(added.data, r.AddInstancesData)
        beats = cellctl.heartbeat(dbs, host="cmp1", count=1)
        assert beats.code == 0, beats.messages
        fits(beats.data, r.HeartbeatData)
        cell0 = cellctl.map_cell0(dbs)
        fits(cell0.data, r.MapCell0Data)
        created = cellctl.create_cell(dbs, name="one")
        assert created.code == 0, created.messages
        fits(created.data, r.CreateCellData)
        uuid = created.data["uuid"]
        fits(cellctl.update_cell(dbs, cell_uuid=uuid, name="cell1").data, r.UpdateCellData)
        for row in cellctl.list_cells(dbs).table.rows:
            fits(row, r.CellRow)
        found = cellctl.discover_hosts(dbs)
        fits(found.data, r.DiscoverHostsData)
        for cell in found.data["cells"]:
            fits(cell, r.DiscoveredCell)
        fits(cellctl.map_cell_and_hosts(dbs).data, r.MapCellAndHostsData)
        waited = cellctl.discover_hosts(
            dbs, wait=WaitSpec(expect=("cmp1", "ghost"), timeout=0.5, interval=0.1))
        fits(waited.data, r.DiscoverHostsData)
        for host in waited.data["hosts"]:
            fits(host, r.WaitedHost)
        for status in (False, True):
            for row in cellctl.list_hosts(dbs, status=status).table.rows:
                fits(row, r.HostRow)
        mapped = cellctl.map_instances(dbs, cell_uuid=uuid)
        fits(mapped.data, r.MapInstancesData)
        instance = mapped.data["marker"] or _an_instance(dbs)
        fits(cellctl.verify_instance(dbs, instance_uuid=instance).data, r.VerifyInstanceData)
        assert cellctl.add_instances(dbs, count=2, host="cmp1").code == 0  # not mapped
        audited = cellctl.audit(dbs)
        fits(audited.data, r.AuditData)
        for finding in [*audited.data["findings"], *audited.table.rows]:
            fits(finding, r.AuditFinding)
        assert audited.data["counts"]["instance_without_mapping"] == 2
        for row in cellctl.list_services(dbs).table.rows:
            fits(row, r.ServiceRow)
        health = cellctl.status(dbs)
        fits(health.data, r.StatusData)
        for check in [*health.data["checks"], *health.table.rows]:
            fits(check, r.StatusCheck)
        probed = cellctl.status(dbs, check_connectivity=True, timeout=1.0)
        for probe in probed.data["connectivity"]:
            fits(probe, r.ConnectivityProbe)
        ensured = cellctl.ensure_cell(dbs, name="cell1", from_config=True)
        fits(ensured.data, r.CellEnsureData)
        conflict = cellctl.ensure_cell(dbs, name="two", from_config=True)
        fits(conflict.data, r.CellEnsureData)
        fits(conflict.data["conflict"], r.CellConflict)
        checked = cellctl.check_cells(dbs, connectivity=False)
        fits(checked.data, r.CellCheckData)
        for check in [*checked.data["checks"], *checked.table.rows]:
            fits(check, r.CellCheck)
        for row in cellctl.show_config(dbs).table.rows:
            fits(row, r.ConfigRow)
        for row in cellctl.ironic_ring(dbs).table.rows:
            fits(row, r.IronicNodeRow)
        for row in cellctl.ironic_ring(dbs, without=["bm1"], show_all=True).table.rows:
            fits(row, r.IronicNodeRow)
        for row in cellctl.ironic_ring(dbs, summary=True, joining=["bm2"]).table.rows:
            fits(row, r.IronicRingServiceRow)
        bm1_conf = tmp_path / "bm1.conf"
        bm1_conf.write_text("[ironic]\n")  # no way to Ironic: the database's nodes
        owners = cellctl.ironic_owners(dbs, service_configs=[f"bm1={bm1_conf}"])
        assert owners.code == 0 and len(owners.table.rows) == 2, owners.messages
        for row in owners.table.rows:
            fits(row, r.IronicOwnerNodeRow)
        summary = cellctl.ironic_owners(dbs, service_configs=[f"bm1={bm1_conf}"],
                                        services=True)
        for row in summary.table.rows:
            fits(row, r.IronicOwnerServiceRow)
        assert [row["nodes_managed"] for row in summary.table.rows] == [2]
        planned_moves = [cellctl.ironic_move(dbs, source="bm1", destination="cmp1"),
                         cellctl.ironic_move(dbs, source="bm1", rebalance=True,
                                             nodes=["6e1c6e1c-0000-4000-8000-000000000001"])]
        for move in planned_moves:
            for row in move.table.rows:
                fits(row, r.IronicMoveRow)
                for check in row["checks"]:
                    fits(check, r.IronicMoveCheck)
        assert [len(move.table.rows) for move in planned_moves] == [2, 1]
        assert planned_moves[1].table.rows[0]["cell_uuid"] is None  # no cell has that node
        setup = cellctl.simple_cell_setup(dbs)
        assert setup.code == 0, setup.messages
        fits(setup.data, r.SimpleCellSetupData)
        for synced in (cellctl.api_db_sync(dbs), cellctl.db_sync(dbs, all_cells=True)):
            assert synced.code == 0, synced.messages
            fits(synced.data, r.SchemaSyncData)
            for database in synced.data["databases"]:
                fits(database, r.SyncedDatabase)
        for refused in (cellctl.delete_host(dbs, cell_uuid=uuid, host="cmp1", dry_run=True),
                        cellctl.delete_host(dbs, cell_uuid=uuid, host="ghost")):
            assert refused.code != 0
            fits(refused.data, r.DeleteHostData)
        planned = cellctl.delete_cell(dbs, cell_uuid=uuid, dry_run=True)
        fits(planned.data, r.DeleteCellData)
        for service in planned.data["services"]:
            fits(service, r.CellService)
        for node in planned.data["compute_nodes"]:
            fits(node, r.CellComputeNode)
        gone = cellctl.delete_host(dbs, cell_uuid=uuid, host="bm1")
        assert gone.code == 0, gone.messages
        fits(gone.data, r.DeleteHostData)
        empty = cellctl.create_cell(dbs, name="empty", transport_url="rabbit://h/empty",
                                    database_connection=f"sqlite:///{tmp_path}/empty.db")
        assert empty.code == 0, empty.messages
        deleted = cellctl.delete_cell(dbs, cell_uuid=empty.data["uuid"])
        assert deleted.code == 0, deleted.messages
        fits(deleted.data, r.DeleteCellData)
    # Every type met real values, optional keys included where a run above adds them.
    assert "created" in seen["MapCell0Data"] and "state" in seen["HostRow"]
    assert {"hosts", "missing", "timed_out"} <= seen["DiscoverHostsData"]
    assert "conflict" in seen["CellEnsureData"] and "changed" in seen["CellEnsureData"]
    assert "owner_after" in seen["IronicNodeRow"]
    assert "ironic_nodes" in seen["RegisterServiceData"]
    assert seen["SimpleCellSetupData"] == r.SimpleCellSetupData.__optional_keys__
    assert {"live_instances", "reasons", "nodes_unmapped"} <= seen["DeleteHostData"]
    assert {"reasons", "host_mappings_deleted", "services"} <= seen["DeleteCellData"]
    assert "nodes_owned_after" in seen["IronicRingServiceRow"]
    assert set(probed.data) == r.StatusData.__required_keys__ | {"connectivity"}


def test_every_operation_declares_its_types():
    """No exported operation returns an untyped Result (issue 18)."""
    import inspect

    operations = {name: getattr(cellctl, name) for name in cellctl.__all__
                  if name[0].islower() and name not in {"resolve", "__version__"}}
    annotations = {name: str(inspect.signature(op).return_annotation)
                   for name, op in operations.items()}
    assert len(annotations) >= 28
    assert {name: a for name, a in annotations.items() if not a.startswith("Result[")} == {}


def _an_instance(dbs) -> str:
    from sqlalchemy import select

    from cellctl.tables.cell import instances

    with dbs.local_cell.connect() as conn:
        return str(conn.execute(select(instances.c.uuid).limit(1)).scalar_one())
