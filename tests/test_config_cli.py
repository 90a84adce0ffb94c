"""The configuration through the command line: --config-dir, argument order, the default
search, `cellctl config`, the embedded-default note, rejected files, start-up imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from cellctl.cli import Command, load_all_commands, main


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str | None]:
    home = tmp_path / "home"
    home.mkdir()
    cleared: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(("CELLCTL_", "OS_"))}
    return {**cleared, "HOME": str(home), "CELLCTL_STATE_DIR": str(tmp_path / "state")}


def cellctl(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def config_rows(env: dict[str, str | None], *args: str) -> list[dict[str, Any]]:
    result = cellctl(env, *args, "config", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def by_setting(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["setting"]: row for row in rows if not row["setting"].startswith("config_")}


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_config_dir_order_follows_the_command_line(env, tmp_path):
    conf = write(tmp_path / "nova.conf", "[database]\nconnection = sqlite:////from-file\n")
    write(tmp_path / "d" / "10.conf", "[database]\nconnection = sqlite:////from-dir\n")
    directory = str(tmp_path / "d")
    file_then_dir = by_setting(config_rows(env, "--config-file", conf, "--config-dir", directory))
    dir_then_file = by_setting(config_rows(env, "--config-dir", directory, "--config-file", conf))
    assert file_then_dir["database_connection"]["value"] == "sqlite:////from-dir"
    assert file_then_dir["database_connection"]["source"] == \
        f"{tmp_path}/d/10.conf [database] connection"
    assert dir_then_file["database_connection"]["value"] == "sqlite:////from-file"
    # the = spelling, as nova-manage's argparse takes it
    equals = by_setting(config_rows(env, f"--config-dir={directory}", f"--config-file={conf}"))
    assert equals["database_connection"]["value"] == "sqlite:////from-file"


def test_config_lists_every_file_and_directory_read_in_order(env, tmp_path):
    conf = write(tmp_path / "nova.conf", "[api_database]\n"
                 "connection = mysql+pymysql://nova:apisecret@db/nova_api\n")
    write(tmp_path / "d" / "20.conf", "[DEFAULT]\ntransport_url = rabbit://n:mqsecret@mq//\n")
    write(tmp_path / "d" / "10.conf", "[database]\nconnection = mysql+pymysql://n:dbs3cret@db/n\n")
    write(tmp_path / "d" / "10.conf.rpmsave", "[database]\nconnection = sqlite:////old\n")
    write(tmp_path / "home" / ".nova" / "nova.conf.d" / "50.conf", "[cache]\nenabled = true\n")
    result = cellctl(env, "--config-file", conf, "--config-dir", str(tmp_path / "d"), "config",
                     "--format", "json")
    assert result.exit_code == 0, result.stderr
    for secret in ("apisecret", "mqsecret", "dbs3cret"):
        assert secret not in result.stdout
    rows = json.loads(result.stdout)
    read = [(r["setting"], r["value"], r["source"]) for r in rows
            if r["setting"].startswith("config_")]
    # ~/.nova/nova.conf.d is not read: a --config-dir is given
    assert read == [
        ("config_file", conf, "--config-file"),
        ("config_dir", f"{tmp_path}/d", "--config-dir"),
        ("config_file", f"{tmp_path}/d/10.conf", f"--config-dir {tmp_path}/d"),
        ("config_file", f"{tmp_path}/d/20.conf", f"--config-dir {tmp_path}/d"),
    ]
    settings = by_setting(rows)
    assert settings["transport_url"]["value"] == "rabbit://n:****@mq//"
    assert settings["database_connection"]["value"] == "mysql+pymysql://n:****@db/n"
    assert settings["cache_enabled"] == {"setting": "cache_enabled", "value": "False",
                                         "source": "default"}
    # The table lists the same, masked too.
    table = cellctl(env, "--config-file", conf, "--config-dir", str(tmp_path / "d"), "config")
    assert "apisecret" not in table.stdout and f"{tmp_path}/d/20.conf" in table.stdout


def test_default_search_is_nova_manages(env, tmp_path):
    api = tmp_path / "api.sqlite"
    home = Path(str(env["HOME"]))
    write(home / ".nova" / "nova.conf", f"[api_database]\nconnection = sqlite:///{api}\n"
          f"[database]\nconnection = sqlite:///{tmp_path}/cell1.sqlite\n")
    write(home / ".nova" / "nova.conf.d" / "50.conf",
          "[DEFAULT]\ntransport_url = rabbit://u:p@mq:5672/\n")
    rows = config_rows(env)
    read = [(r["setting"], r["value"], r["source"]) for r in rows
            if r["setting"].startswith("config_")]
    assert read == [
        ("config_file", f"{home}/.nova/nova.conf", "default search"),
        ("config_dir", f"{home}/.nova/nova.conf.d", "default search"),
        ("config_file", f"{home}/.nova/nova.conf.d/50.conf", f"{home}/.nova/nova.conf.d"),
    ]
    # A writing command uses the file found, not the embedded default, and warns of
    # nothing: stdout empty as nova-manage's, stderr only what the sync did.
    result = cellctl(env, "api_db", "sync")
    assert result.exit_code == 0, result.stderr
    assert (result.stdout, result.stderr) == ("", f"API database sqlite:///{api}: "
                                                  "created at api_0001\n")
    assert api.exists()
    assert not (tmp_path / "state" / "api.sqlite").exists()


def test_tilde_in_config_file_is_expanded(env, tmp_path):
    write(Path(str(env["HOME"])) / "nova.conf", "[database]\nconnection = sqlite:////tilde\n")
    settings = by_setting(config_rows(env, "--config-file=~/nova.conf"))
    assert settings["database_connection"]["value"] == "sqlite:////tilde"


def test_embedded_default_note_once_for_commands_that_write(env, tmp_path):
    result = cellctl(env, "api_db", "sync")
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "embedded default" in line]
    assert len(notes) == 1, result.stderr
    assert "No configuration file given or found" in notes[0]
    assert str(tmp_path / "state") in notes[0]
    assert (tmp_path / "state" / "api.sqlite").exists()
    # JSON mode: the note is a JSON line on stderr
    as_json = cellctl(env, "map_cell0", "--format", "json")
    assert as_json.exit_code == 0, as_json.stderr
    (line,) = [json.loads(x) for x in as_json.stderr.splitlines() if "embedded" in x]
    assert line["level"] == "warning"
    # Commands that only read say nothing.
    for args in (["list_cells"], ["config"], ["api_db", "version"], ["cell_v2", "list_cells"]):
        read = cellctl(env, *args)
        assert read.exit_code == 0, (args, read.stderr)
        assert "embedded default" not in read.stderr, args
    # Nor does a command whose databases and queue are all given.
    given = {**env, "CELLCTL_API_DATABASE_CONNECTION": f"sqlite:///{tmp_path}/a.sqlite",
             "CELLCTL_DATABASE_CONNECTION": f"sqlite:///{tmp_path}/c.sqlite",
             "CELLCTL_TRANSPORT_URL": "memory:///"}
    assert cellctl(given, "api_db", "sync").stderr == (
        f"API database sqlite:///{tmp_path}/a.sqlite: created at api_0001\n")


def test_every_command_declares_whether_it_writes():
    """No hand-kept list: each command says at registration whether it writes."""
    undeclared = []
    read_only = set()

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                walk(command, f"{prefix}{name} " if name != "cell_v2" else prefix)
            elif not isinstance(command, Command) or command.writes is None:
                undeclared.append(prefix + name)
            elif not command.writes_with({}):
                read_only.add(prefix + name)

    load_all_commands()
    walk(main, "")
    assert undeclared == []
    assert {"config", "list_cells", "list_hosts", "status", "service list", "db version",
            "audit"} <= read_only
    assert "map_instances" not in read_only
    audit = main.commands["audit"]
    assert isinstance(audit, Command) and audit.writes_with({"fix": True})


@pytest.mark.parametrize(("files", "message"), [
    ({"bad.conf": "[api_database]\n  connection = sqlite:////x\n"},
     "Cannot parse config file {dir}/bad.conf line 2: Unexpected continuation line"),
    ({"bad.conf": b"[DEFAULT]\ntransport_url = caf\xe9\n"},
     "Cannot decode config file {dir}/bad.conf line 2"),
    ({"bad.conf": "[api_database]\nconnection = sqlite:///$nowhere/x\n"},
     "Cannot substitute $nowhere in {dir}/bad.conf [api_database] connection"),
    ({"bad.conf": "[DEFAULT]\nservice_down_time = soon\n"},
     "Invalid value in {dir}/bad.conf [DEFAULT] service_down_time"),
])
def test_rejected_file_is_one_line_exit_1_nothing_written(env, tmp_path, files, message):
    api = tmp_path / "api.sqlite"
    good = write(tmp_path / "nova.conf", f"[api_database]\nconnection = sqlite:///{api}\n")
    for name, content in files.items():
        path = tmp_path / "d" / name
        path.parent.mkdir(exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    result = cellctl(env, "--config-file", good, "--config-dir", str(tmp_path / "d"),
                     "api_db", "sync")
    assert result.exit_code == 1
    assert result.stderr.startswith("ERROR: " + message.format(dir=tmp_path / "d"))
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert not api.exists()
    assert not (tmp_path / "state").exists()


def test_missing_config_dir_is_one_line_exit_1(env, tmp_path):
    result = cellctl(env, "--config-dir", str(tmp_path / "nope"), "list_cells")
    assert result.exit_code == 1
    assert result.stderr == f"ERROR: Cannot read config directory {tmp_path}/nope: " \
                            "No such file or directory\n"


def test_servicegroup_driver_precedence(env, tmp_path):
    conf = write(tmp_path / "nova.conf", "[DEFAULT]\nservicegroup_driver = mc\n")
    assert by_setting(config_rows(env, "--config-file", conf))["servicegroup_driver"] == {
        "setting": "servicegroup_driver", "value": "mc",
        "source": f"{conf} [DEFAULT] servicegroup_driver"}
    overridden = {**env, "CELLCTL_SERVICEGROUP_DRIVER": "zk"}
    assert by_setting(config_rows(overridden, "--config-file", conf))["servicegroup_driver"][
        "source"] == "CELLCTL_SERVICEGROUP_DRIVER"
    bad = cellctl({**env, "CELLCTL_SERVICEGROUP_DRIVER": "redis"}, "--config-file", conf,
                  "config")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("ERROR: Invalid value for servicegroup_driver from "
                                 "CELLCTL_SERVICEGROUP_DRIVER")


def test_os_environment_source_through_the_cli(env, tmp_path):
    conf = write(tmp_path / "nova.conf", f"[api_database]\nconnection = sqlite:///{tmp_path}/f\n")
    api = tmp_path / "from-env.sqlite"
    result = cellctl({**env, "OS_API_DATABASE__CONNECTION": f"sqlite:///{api}"},
                     "--config-file", conf, "api_db", "sync")
    assert result.exit_code == 0, result.stderr
    assert api.exists()
    # CELLCTL_* is above the configuration, OS_* included
    settings = by_setting(config_rows(
        {**env, "OS_API_DATABASE__CONNECTION": "sqlite:////os",
         "CELLCTL_API_DATABASE_CONNECTION": "sqlite:////cellctl"}, "--config-file", conf))
    assert settings["api_database_connection"]["source"] == "CELLCTL_API_DATABASE_CONNECTION"


def test_settings_open_the_databases_configured(env, tmp_path, mysql_factory):
    """A quoted URL (as Helm renders it), in an upper-case section, against MariaDB."""
    url = mysql_factory.new("api")
    conf = write(tmp_path / "nova.conf", f'[API_DATABASE]\nconnection = "{url}"\n')
    result = cellctl(env, "--config-file", conf, "api_db", "sync")
    assert result.exit_code == 0, result.stderr
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert "cell_mappings" in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_no_oslo(flag):
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "cellctl", flag],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")]
    assert "click" in imported  # the check sees imports at all
    assert not [name for name in imported if name.startswith(("oslo", "sqlalchemy", "kombu"))]
    # the issue's own check: `python -X importtime -m cellctl --help 2>&1 | grep -i oslo`
    assert "oslo" not in (done.stdout + done.stderr).lower()
