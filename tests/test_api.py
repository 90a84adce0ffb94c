"""cellctl as a library: the exported names, lazy imports, Databases as a context manager."""

from __future__ import annotations

import subprocess
import sys

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


def test_bad_numbers_from_python_are_named_as_keywords(tmp_path):
    settings = cellctl.resolve(environ={"CELLCTL_STATE_DIR": str(tmp_path)},
                               default_config_files=[], default_config_dirs=[])
    with cellctl.Databases(settings) as dbs:
        result = cellctl.heartbeat(dbs, host="cmp1", interval=0, count=0)
        dev = cellctl.add_instances(dbs, count=3, node="not-a-uuid", host="cmp1")
        ring = cellctl.ironic_ring(dbs, without=[" "])
    assert result.code == 1
    assert [m.text for m in result.messages] == [
        "interval must be a positive number of seconds, got 0",
        "count must be a positive number, got 0"]
    assert (dev.code, [m.text for m in dev.messages]) == (
        1, ["node= must be an Ironic node UUID, got 'not-a-uuid'"])
    assert (ring.code, [m.text for m in ring.messages]) == (
        1, ["without= must name a host, got ' '"])
