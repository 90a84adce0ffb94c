"""The Python API guide's worked example (doc/examples/map_all_cells.py) really works.

doc/api.rst shows that file as it is; here it runs as the guide says to run
it, on the embedded SQLite defaults of a fresh state directory, over two
cells (cell0 too) whose instances nothing has mapped yet.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from cellctl.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "doc" / "examples" / "map_all_cells.py"


def cellctl(state_dir: Path, *args: str, **env: str) -> str:
    runner = CliRunner(env={"CELLCTL_STATE_DIR": str(state_dir), **env})
    result = runner.invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def mappings(api_db: Path) -> dict[str, int]:
    engine = sa.create_engine(f"sqlite:///{api_db}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT im.instance_uuid, cm.name FROM instance_mappings im "
            "JOIN cell_mappings cm ON cm.id = im.cell_id")).all()
    engine.dispose()
    counts: dict[str, int] = {}
    for _, cell in rows:
        counts[cell] = counts.get(cell, 0) + 1
    assert len({uuid for uuid, _ in rows}) == len(rows)  # one mapping per instance
    return counts


def instance_count(db: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM instances")).scalar_one()
    engine.dispose()
    return int(count)


def run_example(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=300,
        env={"CELLCTL_STATE_DIR": str(state_dir), "PATH": "/usr/bin:/bin"},
    )


def test_map_all_cells_example(tmp_path):
    state = tmp_path / "state"
    cell2_db = tmp_path / "cell2.sqlite"
    # cell1 is the embedded [database] with one host; cell2 a second SQLite cell.
    cellctl(state, "service", "register", "--host", "compute1")
    cellctl(state, "map_cell0")
    cellctl(state, "map_cell_and_hosts", "--name", "cell1")
    cellctl(state, "create_cell", "--name", "cell2", "--transport-url", "memory:///cell2",
            "--database_connection", f"sqlite:///{cell2_db}")
    cellctl(state, "db", "sync", "--all-cells")
    cellctl(state, "dev", "add-instances", "--count", "45000", "--deleted", "100")
    cellctl(state, "dev", "add-instances", "--count", "3000",
            CELLCTL_DATABASE_CONNECTION=f"sqlite:///{cell2_db}")
    assert mappings(state / "api.sqlite") == {}

    done = run_example(state)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert mappings(state / "api.sqlite") == {"cell1": 45000, "cell2": 3000}
    assert instance_count(state / "cell1.sqlite") == 45000
    lines = done.stderr.splitlines()
    # One block per cell, in list_cells' order (by name): cell0 (empty), cell1, cell2.
    assert [line for line in lines if line.startswith("Cell ")] == [
        "Cell cell0:", "Cell cell1:", "Cell cell2:"]
    cell1 = lines[lines.index("Cell cell1:") + 1:lines.index("Cell cell2:")]
    # The Progress protocol: start with the total, a line per 20,000, finish.
    assert [line.split(": ", 1)[1] for line in cell1[:4]] == [
        "45000 to look at", "20000/45000", "40000/45000", "done, 45000 looked at"]
    assert cell1[4:] == ["  45000 mapped, 0 were already"]
    assert lines[-1] == "  3000 mapped, 0 were already"

    # Run again: nothing new, every instance looked at and found mapped.
    again = run_example(state)
    assert again.returncode == 0, again.stderr
    assert "  0 mapped, 45000 were already" in again.stderr.splitlines()
    assert mappings(state / "api.sqlite") == {"cell1": 45000, "cell2": 3000}


def test_example_names_a_cell_it_cannot_map_and_exits_1(tmp_path):
    state = tmp_path / "state"
    cellctl(state, "service", "register", "--host", "compute1")
    cellctl(state, "map_cell_and_hosts", "--name", "cell1")
    cellctl(state, "dev", "add-instances", "--count", "10")
    # A cell whose database file does not exist: that cell fails, the others go on.
    cellctl(state, "create_cell", "--name", "broken", "--transport-url", "memory:///broken",
            "--database_connection", f"sqlite:///{tmp_path / 'missing.sqlite'}")

    done = run_example(state)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    broken = lines.index("Cell broken:")
    assert lines[broken + 1].startswith("  not mapped: ")
    assert "missing.sqlite" in lines[broken + 1]
    assert "  10 mapped, 0 were already" in lines
    assert mappings(state / "api.sqlite") == {"cell1": 10}
