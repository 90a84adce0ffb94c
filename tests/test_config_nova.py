"""Configurations as deployment tools render them, side by side with nova-manage 34:
both tools open the same databases and store the same URLs (tests/nova_support.py).

Each copy of the cloud gets its own files of the same shape, naming its own
databases; the harness compares the rows both tools leave behind.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from nova_support import Side, SideBySide

pytestmark = [pytest.mark.nova, pytest.mark.mysql]


def my_ipv4() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.0", 80))
        return str(probe.getsockname()[0])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def both(pair: SideBySide, args_for: dict[str, list[str]]) -> tuple[int, int]:
    """nova-manage on its copy and cellctl on ours, each with its own arguments."""
    nova = pair.nova_manage(*args_for["n"])
    ours = pair.cellctl(*args_for["c"])
    return nova.code, ours.code


def test_helm_quotes_sections_and_substitution(side_by_side):
    """Quoted values, upper-case section names, $my_ip and a $$-escaped password."""
    pair = side_by_side
    for side in pair.sides.values():
        write(side.conf, (
            "[DEFAULT]\n"
            'transport_url = "rabbit://guest:gu$$est@$my_ip:5672,guest:gu$$est@127.0.0.1:5672//"\n'
            "[API_DATABASE]\n"
            f'connection = "{side.url("api")}"\n'
            "[DATABASE]\n"
            f"connection = '{side.url('cell1')}'\n"))
    pair.step("cell_v2", "create_cell", "--name", "cell1", code=0)
    (nova_cell,) = pair.nova.rows("api", "cell_mappings")
    (our_cell,) = pair.ours.rows("api", "cell_mappings")
    expected = f"rabbit://guest:gu$est@{my_ipv4()}:5672,guest:gu$est@127.0.0.1:5672//"
    assert nova_cell["transport_url"] == our_cell["transport_url"] == expected
    assert our_cell["database_connection"] == pair.ours.url("cell1")
    assert nova_cell["database_connection"] == pair.nova.url("cell1")


def test_drop_in_directory_overrides_the_file(side_by_side):
    """distro packaging: nova.conf names a database that does not exist; a nova.conf.d
    drop-in (read after it, sorted; *.rpmsave ignored) names the real ones."""
    pair = side_by_side
    dirs: dict[str, Path] = {}
    for name, side in pair.sides.items():
        write(side.conf, "[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:5672/\n"
              "[api_database]\nconnection = mysql+pymysql://root@127.0.0.1:3306/ctn_nowhere\n"
              "[database]\nconnection = mysql+pymysql://root@127.0.0.1:3306/ctn_nowhere\n")
        dirs[name] = side.conf.parent / "nova.conf.d"
        write(dirs[name] / "50-database.conf", f"[api_database]\nconnection = {side.url('api')}\n"
              f"[database]\nconnection = {side.url('cell1')}\n")
        write(dirs[name] / "60-database.conf.rpmsave",
              "[database]\nconnection = mysql+pymysql://root@127.0.0.1:3306/ctn_old\n")
        write(dirs[name] / "90-mq.conf",
              "[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:5672/dropin\n")
    args = {name: ["--config-dir", str(dirs[name]), "cell_v2", "map_cell0"] for name in dirs}
    assert both(pair, args) == (0, 0)
    args = {name: ["--config-dir", str(dirs[name]), "cell_v2", "create_cell", "--name", "c1"]
            for name in dirs}
    assert both(pair, args) == (0, 0)
    pair.assert_same_state("map_cell0 and create_cell with --config-dir")
    cells = {c["name"]: c for c in pair.ours.rows("api", "cell_mappings")}
    assert cells["c1"]["transport_url"] == "rabbit://guest:guest@127.0.0.1:5672/dropin"
    assert cells["cell0"]["database_connection"] == pair.ours.url("cell1").replace(
        "_cell1?", "_cell1_cell0?")


def test_os_environment_variables(side_by_side, monkeypatch):
    """oslo.config's environment source: OS_DATABASE__CONNECTION wins over the file."""
    pair = side_by_side
    pair.write_conf(database=False)
    for name in ("n", "c"):
        side: Side = pair.sides[name]
        monkeypatch.setenv("OS_DATABASE__CONNECTION", side.url("cell1"))
        outcome = (pair.nova_manage if name == "n" else pair.cellctl)(
            "cell_v2", "create_cell", "--name", "from-env")
        assert outcome.code == 0, outcome
    pair.assert_same_state("create_cell with OS_DATABASE__CONNECTION")
    (cell,) = pair.ours.rows("api", "cell_mappings")
    assert cell["database_connection"] == pair.ours.url("cell1")


def test_rejected_file_writes_nothing_in_either(side_by_side):
    """An indented key: nova-manage dies with a traceback (exit 1), cellctl says one line
    (exit 1); neither writes."""
    pair = side_by_side
    for side in pair.sides.values():
        write(side.conf, "[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:5672/\n"
              f"[api_database]\nconnection = {side.url('api')}\n"
              f"[database]\n  connection = {side.url('cell1')}\n")
    nova, ours = pair.step("cell_v2", "create_cell", "--name", "x", code=1)
    assert "ConfigFileParseError" in nova.stderr
    assert ours.stderr.startswith(f"ERROR: Cannot parse config file {pair.ours.conf} line 6: "
                                  "Unexpected continuation line")
    assert ours.stderr.count("\n") == 1
    assert pair.ours.rows("api", "cell_mappings") == []
