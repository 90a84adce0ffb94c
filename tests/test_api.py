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
        assert cellctl.register_service(dbs, "compute1").code == 0
        from cellctl.ops.dev import add_instances

        assert add_instances(dbs, 25).code == 0
        setup = cellctl.simple_cell_setup(dbs)
        assert setup.code == 0, setup.messages
        # simple_cell_setup mapped them already: remap from scratch, reporting progress
        from sqlalchemy import delete

        from cellctl.tables.api import instance_mappings

        with dbs.api.begin() as conn:
            conn.execute(delete(instance_mappings))
        cell = next(row for row in cellctl.list_cells(dbs).table.rows if row["name"] != "cell0")
        progress: Progress = Recorder()
        result = cellctl.map_instances(dbs, cell["uuid"], progress=progress)
        assert result.code == 0
        assert result.data is not None and result.data["mapped"] == 25
        assert progress.events[0][0] == "start" and progress.events[-1][0] == "finish"
        assert sum(n for kind, n in progress.events if kind == "advance") == 25
        assert cellctl.map_instances(dbs, cell["uuid"]).data["mapped"] == 0
    # disposed on leaving the block, and usable again afterwards
    assert dbs._engines == {}
