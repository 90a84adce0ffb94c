"""cellctl installed as ``nova-manage`` (cellctl.cli.nova_manage), the real nova-manage 34
behind it: what it answers, what it hands over, and devstack's and grenade's sequence
of nova-manage calls run through it, compared with the real nova-manage alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from nova_env import (
    NOVA_MANAGE_TIMEOUT,
    TRANSPORT_URL,
    Outcome,
    create_nova_database,
    mysql_url,
    schema_shape,
    server_engine,
    server_sql,
    write_nova_conf,
)
from nova_support import CELL0_UUID, DbUrl, Side, SideBySide

from cellctl.cli import nova_manage
from cellctl.cli.nova_manage import CommandLine, cellctl_args, parse

CELLCTL = Path(sys.executable).with_name("cellctl")
STANDIN_SCRIPT = Path(sys.executable).with_name("cellctl-nova-manage")


# --- nova-manage's command line ---------------------------------------------


@pytest.mark.parametrize(("argv", "config", "debug", "command"), [
    (["cell_v2", "list_cells"], (), False, ("cell_v2", "list_cells")),
    # repeated files and a directory, in command-line order; both value forms
    (["--config-file", "/a.conf", "--config-file=/b.conf", "--config-dir", "/d",
      "cell_v2", "list_cells", "--verbose"],
     (("file", "/a.conf"), ("file", "/b.conf"), ("dir", "/d")), False,
     ("cell_v2", "list_cells", "--verbose")),
    # unambiguous prefixes, as argparse takes them
    (["--config-f", "/a.conf", "--config-d=/d", "--nodeb", "db", "sync"],
     (("file", "/a.conf"), ("dir", "/d")), False, ("db", "sync")),
    (["--deb", "api_db", "sync"], (), True, ("api_db", "sync")),
    (["-d", "cell_v2", "discover_hosts"], (), True, ("cell_v2", "discover_hosts")),
    (["--debug", "--nodebug", "db", "version"], (), False, ("db", "version")),
    (["--nodebug", "--debug", "db", "version"], (), True, ("db", "version")),
    # oslo.log's options: accepted, their values taken, nothing else changes
    (["--log-file", "/l", "--logfile=/l", "--log-dir", "/d", "--logdir=/d",
      "--log-config-append", "/x", "--log-config=/x", "--log_config", "/x",
      "--log-date-format", "%Y", "--syslog-log-facility", "LOG_USER", "--use-syslog",
      "--nouse-syslog", "--use-journal", "--nouse-journal", "--use-json", "--nouse-json",
      "--post-mortem", "--nopost-mortem", "cell_v2", "list_hosts"],
     (), False, ("cell_v2", "list_hosts")),
    (["--log-di", "/d", "--use-sys", "--nouse-jou", "--config-file", "/n.conf", "db", "sync",
      "--local_cell"], (("file", "/n.conf"),), False, ("db", "sync", "--local_cell")),
    # a value that looks like a category is still the option's value
    (["--log-file", "cell_v2", "db", "version"], (), False, ("db", "version")),
])
def test_global_options(argv, config, debug, command):
    assert parse(argv) == CommandLine(config, debug, command)


@pytest.mark.parametrize("argv", [
    [],                                          # no category: argparse's error
    ["--version"], ["--vers"], ["-h"], ["--help"], ["--he"],
    ["--shell_completion", "bash"],
    ["--config", "/a.conf", "cell_v2", "list_cells"],       # --config-file or --config-dir
    ["--log", "/l", "cell_v2", "list_cells"],               # ambiguous
    ["--log-d", "/d", "cell_v2", "list_cells"],             # --log-dir or --log-date-format
    ["--nouse-j", "cell_v2", "list_cells"],                 # --nouse-journal or --nouse-json
    ["--log-config-a", "/x", "--log-conf", "/x", "cell_v2", "list_cells"],  # 2nd ambiguous
    ["--no", "cell_v2", "list_cells"],                      # --nodebug, --nouse-*...
    ["--verbose", "cell_v2", "list_cells"],                 # not a global option in 34
    ["--watch-log-file", "cell_v2", "list_cells"],          # gone from oslo.log
    ["--debug=true", "cell_v2", "list_cells"],              # a flag given a value
    ["--config-file"],                                      # a value missing
    ["--config-file", "--debug", "cell_v2", "list_cells"],
    ["--", "cell_v2", "list_cells"],
    ["-x", "cell_v2", "list_cells"],
])
def test_command_lines_only_nova_manage_answers(argv):
    assert parse(argv) is None


def test_global_options_are_nova_manage_34s(nova_venv_path):
    """The option table is the real nova-manage's: every spelling its --help lists."""
    done = subprocess.run([str(nova_venv_path / "bin" / "nova-manage"), "--help"],
                          capture_output=True, text=True, timeout=NOVA_MANAGE_TIMEOUT)
    assert done.returncode == 0, done.stderr
    options = done.stdout.split("\noptions:", 1)[1].split("\nCommand categories:", 1)[0]
    listed = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", options))
    assert listed == set(nova_manage._GLOBAL_OPTIONS)


@pytest.mark.parametrize(("command", "expected"), [
    (("cell_v2", "list_cells", "--verbose"), ["cell_v2", "list_cells", "--verbose"]),
    # argparse's unambiguous prefixes, in nova-manage's full spelling for cellctl
    (("cell_v2", "list_cells", "--verb"), ["cell_v2", "list_cells", "--verbose"]),
    (("cell_v2", "discover_hosts", "--cell", "U", "--by"),
     ["cell_v2", "discover_hosts", "--cell_uuid", "U", "--by-service"]),
    (("cell_v2", "update_cell", "--cell_uuid=U", "--dis", "--trans=none:/"),
     ["cell_v2", "update_cell", "--cell_uuid=U", "--disable", "--transport-url=none:/"]),
    (("cell_v2", "map_instances", "--cell_uuid", "U", "--max-count", "-1"),
     ["cell_v2", "map_instances", "--cell_uuid", "U", "--max-count", "-1"]),
    # not nova-manage 34's: the real nova-manage's usage error
    (("cell_v2", "list_cells", "--format", "json"), None),
    (("cell_v2", "list_cells", "--verbose=yes"), None),
    (("cell_v2", "list_cells", "extra"), None),
    (("cell_v2", "list_cells", "-h"), None),
    (("cell_v2", "update_cell", "--cell-uuid", "U"), None),
    (("cell_v2", "delete_cell", "--cell_uuid", "U", "--dry-run"), None),
    (("cell_v2", "delete_host", "--cell", "U", "--host"), None),  # no value
    (("cell_v2", "discover_hosts", "--wait-for", "3"), None),
    (("cell_v2", "map_instances", "--cell_uuid", "U", "--max_count", "3"), None),
    (("cell_v2", "create_cell", "--d", "x"), None),               # ambiguous
    (("cell_v2", "create_cell", "--name", "--verbose"), None),
    (("cell_v2", "create_cell", "--name=c", "--transport-url", "none:///"),
     ["cell_v2", "create_cell", "--name=c", "--transport-url", "none:///"]),
    (("cell_v2",), None),
    (("cell_v2", "--help"), None),
    (("cell_v2", "service", "list"), None),      # cellctl's own, not nova-manage's
    (("cell_v2", "status"), None),
    (("db", "archive_deleted_rows", "--verbose"), None),
    (("db", "online_data_migrations"), None),
    (("db", "purge", "--all"), None),
    (("db", "ironic_compute_node_move"), None),
    (("placement", "heal_allocations"), None),
    (("libvirt", "list_unset_machine_type"), None),
    (("volume_attachment", "show"), None),
    (("image_property", "show"), None),
    (("limits", "migrate_to_unified_limits"), None),
    (("bash-completion",), None),
    (("version",), None),
])
def test_which_commands_cellctl_answers(command, expected):
    line = CommandLine((("file", "/n.conf"),), True, command)
    args = cellctl_args(line, "/usr/bin/nova-manage")
    assert args == (None if expected is None else ["--config-file", "/n.conf", "--debug",
                                                   *expected])


def _sqlite_conf(tmp_path: Path) -> Path:
    return write_nova_conf(tmp_path / "nova.conf", api=f"sqlite:///{tmp_path}/api.db",
                           database=f"sqlite:///{tmp_path}/cell.db", transport_url=None)


def test_schema_commands_on_cellctls_schema_and_on_none(tmp_path):
    """A schema nobody made yet is Nova's to make when there is a real nova-manage,
    cellctl's when there is none; one cellctl made stays cellctl's."""
    conf = _sqlite_conf(tmp_path)
    (tmp_path / "api.db").touch()
    (tmp_path / "cell.db").touch()
    config = (("file", str(conf)),)
    sync = CommandLine(config, False, ("db", "sync", "--local"))
    assert cellctl_args(sync, "/usr/bin/nova-manage") is None
    assert cellctl_args(sync, None) == ["--config-file", str(conf), "db", "sync",
                                        "--local_cell"]
    # as the stand-in runs it (cell0 cannot be looked up in an empty API database:
    # plain db sync is nova-manage's "Could not access cell0", exit 1)
    done = _run([str(CELLCTL), "--config-file", str(conf), "db", "sync", "--local_cell"],
                os.environ)
    assert done.code == 0, done
    for command in (("db", "sync", "--local_cell", "head"), ("db", "version")):
        line = CommandLine(config, False, command)
        assert cellctl_args(line, "/usr/bin/nova-manage") == [
            "--config-file", str(conf), *command]
    # the API database is still empty: Nova's
    assert cellctl_args(CommandLine(config, False, ("api_db", "version")), "/x") is None
    for odd in (("db", "sync", "--help"), ("db", "sync", "1", "2"), ("db", "version", "1"),
                ("api_db", "sync", "--local_cell"), ("db", "sync", "--local_cell=1")):
        assert cellctl_args(CommandLine(config, False, odd), None) is None


# --- running it -------------------------------------------------------------


def _run(argv: list[str], env: dict[str, str] | os._Environ[str],
         cwd: Path | None = None) -> Outcome:
    done = subprocess.run(argv, capture_output=True, text=True, env=dict(env), cwd=cwd,
                          timeout=NOVA_MANAGE_TIMEOUT)
    return Outcome(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def standin(tmp_path) -> Path:
    """A directory holding ``nova-manage``, a symlink to the ``cellctl`` console script."""
    assert CELLCTL.exists(), f"{CELLCTL}: install cellctl (pip install -e .) first"
    directory = tmp_path / "standin-bin"
    directory.mkdir()
    (directory / "nova-manage").symlink_to(CELLCTL)
    return directory


def _env(tmp_path: Path, path: list[Path], real: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLCTL_")}
    env["PATH"] = os.pathsep.join([*map(str, path), "/usr/bin", "/bin"])
    env["CELLCTL_STATE_DIR"] = str(tmp_path / "cellctl-state")
    if real is not None:
        env[nova_manage.REAL_NOVA_MANAGE] = str(real)
    return env


def test_cellctl_under_its_own_name_is_still_cellctl(standin, tmp_path):
    done = _run([str(CELLCTL), "--version"], _env(tmp_path, [standin]))
    assert (done.code, done.stdout) == (0, "cellctl, version " + _version() + "\n")


def _version() -> str:
    from cellctl import __version__

    return __version__


def test_no_real_nova_manage(standin, tmp_path):
    """Nothing to hand over to: one line on stderr, exit 1, and no URL password in it."""
    env = _env(tmp_path, [standin])
    for argv in (["--version"], ["db", "archive_deleted_rows"],
                 ["placement", "sync_aggregates", "--url=mysql://u:secret@db/x"]):
        done = _run(["nova-manage", *argv], env)
        assert (done.code, done.stdout) == (1, ""), done
        assert len(done.stderr.splitlines()) == 1, done
        assert "no real nova-manage" in done.stderr
        assert "CELLCTL_NOVA_MANAGE" in done.stderr
        assert "secret" not in done.stderr


@pytest.mark.nova
def test_cell_v2_options_are_nova_manage_34s(nova_venv_path):
    """The per-command option table is the real nova-manage's: each ``cell_v2`` command's
    usage line, and which options take a value."""
    real = str(nova_venv_path / "bin" / "nova-manage")

    def usage(command: str) -> dict[str, bool]:
        done = subprocess.run([real, "cell_v2", command, "--help"], capture_output=True,
                              text=True, timeout=NOVA_MANAGE_TIMEOUT)
        assert done.returncode == 0, done.stderr
        text = " ".join(done.stdout.split("\n\n", 1)[0].split())
        found = re.findall(r"(?<![\w-])(--[a-z][\w-]*)( (?:<[^>]+>|[A-Z][A-Z_]*))?", text)
        return {flag: bool(value) for flag, value in found}

    with ThreadPoolExecutor(2) as pool:
        seen = dict(zip(nova_manage.CELL_V2_OPTIONS,
                        pool.map(usage, nova_manage.CELL_V2_OPTIONS), strict=True))
    assert seen == nova_manage.CELL_V2_OPTIONS


def test_cellctls_own_options_not_under_nova_manages_name(standin, tmp_path):
    """Without a real nova-manage, a cell_v2 command line with cellctl's own options is
    not answered: one line, exit 1 (a program never sees cellctl's extra flags)."""
    conf = _sqlite_conf(tmp_path)
    env = _env(tmp_path, [standin])
    assert _run(["nova-manage", "--config-file", str(conf), "api_db", "sync"], env).code == 0
    for argv in (["cell_v2", "list_cells", "--format", "json"],
                 ["cell_v2", "discover_hosts", "--wait-for", "1"]):
        done = _run(["nova-manage", "--config-file", str(conf), *argv], env)
        assert (done.code, done.stdout) == (1, ""), done
        assert len(done.stderr.splitlines()) == 1, done
        assert f"not nova-manage 34's options for cell_v2 {argv[1]}" in done.stderr
    # a prefix argparse takes is taken (--verb is --verbose)
    done = _run(["nova-manage", "--config-file", str(conf), "cell_v2", "list_cells", "--verb"],
                env)
    ours = _run([str(CELLCTL), "--config-file", str(conf), "cell_v2", "list_cells",
                 "--verbose"], env)
    assert (done.code, done.stdout) == (0, ours.stdout), done


def test_no_configuration_is_not_answered(standin, tmp_path):
    """nova-manage has no embedded databases: with no configuration file given or found
    (and no variable naming the databases), cellctl as nova-manage answers nothing and
    creates nothing (its own name still runs on the embedded default)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**_env(tmp_path, [standin]), "HOME": str(home)}
    env = {k: v for k, v in env.items() if not k.startswith("OS_")}
    for argv in (["cell_v2", "list_cells"], ["cell_v2", "discover_hosts"], ["api_db", "sync"],
                 ["db", "sync", "--local_cell"]):
        done = _run(["nova-manage", *argv], env, cwd=tmp_path)
        assert (done.code, done.stdout) == (1, ""), done
        assert len(done.stderr.splitlines()) == 1, done
        assert "no configuration file given or found" in done.stderr, done
    assert not (tmp_path / "cellctl-state").exists()
    # a variable naming the databases is a configuration, as OS_<GROUP>__<OPT> is
    # for nova-manage
    named = {**env, "OS_API_DATABASE__CONNECTION": f"sqlite:///{tmp_path}/api.db",
             "OS_DATABASE__CONNECTION": f"sqlite:///{tmp_path}/cell.db"}
    done = _run(["nova-manage", "api_db", "sync"], named, cwd=tmp_path)
    assert done.code == 0, done
    ours = _run([str(CELLCTL), "list_cells"], env, cwd=tmp_path)
    assert ours.code == 0 and ours.stdout.startswith("+"), ours


def test_answers_without_a_real_nova_manage(standin, tmp_path):
    """What cellctl answers needs no real nova-manage (here on SQLite, cellctl's schema)."""
    conf = _sqlite_conf(tmp_path)
    env = _env(tmp_path, [standin])
    for argv in (["api_db", "sync"], ["db", "sync", "--local_cell"]):
        done = _run(["nova-manage", "--config-file", str(conf), *argv], env)
        assert done.code == 0, done
    done = _run(["nova-manage", "--config-f", str(conf), "--log-file", str(tmp_path / "l"),
                 "cell_v2", "list_cells"], env)
    ours = _run([str(CELLCTL), "--config-file", str(conf), "cell_v2", "list_cells"], env)
    assert (done.code, done.stdout, done.stderr) == (0, ours.stdout, ours.stderr)
    assert done.stdout.startswith("+")


@pytest.mark.nova
def test_refuses_to_hand_over_to_itself(standin, tmp_path, nova_venv_path):
    """CELLCTL_NOVA_MANAGE naming cellctl (the symlink, the console scripts) is refused;
    on PATH, cellctl's own nova-manage is skipped for the real one behind it."""
    for itself in (standin / "nova-manage", CELLCTL, STANDIN_SCRIPT):
        done = _run(["nova-manage", "--version"], _env(tmp_path, [standin], real=itself))
        assert (done.code, done.stdout) == (1, ""), done
        assert "is cellctl itself" in done.stderr and len(done.stderr.splitlines()) == 1
    # a second cellctl nova-manage ahead of the real one on PATH is skipped too
    other = tmp_path / "other-bin"
    other.mkdir()
    (other / "nova-manage").symlink_to(STANDIN_SCRIPT)
    real = nova_venv_path / "bin" / "nova-manage"
    done = _run(["nova-manage", "--version"], _env(tmp_path, [standin, other, real.parent]))
    assert (done.code, done.stdout) == (0, "34.0.0\n"), done


@pytest.mark.nova
def test_hands_over_what_cellctl_does_not_answer(standin, tmp_path, nova_venv_path):
    """Same stdout, stderr and exit code as the real nova-manage run directly."""
    real = nova_venv_path / "bin" / "nova-manage"
    home = tmp_path / "home"  # no ~/.nova/nova.conf
    home.mkdir()
    env = {**_env(tmp_path, [standin], real=real), "HOME": str(home)}
    cases = [
        ["--version"],                                   # 0
        ["cell_v2", "list_cells"],  # no configuration given or found: nova-manage's failure
        ["cell_v2", "service", "list"],                  # argparse: exit 2 on stderr
        ["--verbose", "cell_v2", "list_cells"],          # not a global option of 34
        ["--config", "x", "cell_v2", "list_cells"],      # ambiguous prefix
        # cellctl's own options and spellings are not nova-manage's: its usage error
        ["cell_v2", "list_cells", "--format", "json"],
        ["cell_v2", "discover_hosts", "--wait-for", "1"],
        ["cell_v2", "update_cell", "--cell-uuid", "x"],
        ["cell_v2", "create_cell", "--d", "x"],          # ambiguous prefix
        ["cell_v2", "list_cells", "--verbose=1"],
    ]
    with ThreadPoolExecutor(2) as pool:
        for argv in cases:
            direct, through = pool.map(lambda cmd: _run(cmd, env),
                                       [[str(real), *argv], ["nova-manage", *argv]])
            assert (through.code, through.stdout) == (direct.code, direct.stdout), argv
            assert _tail(through.stderr) == _tail(direct.stderr), argv
    assert direct.code == 2
    # nova-manage.real beside it, no setting: an install that moved the real one aside
    (standin / "nova-manage.real").symlink_to(real)
    done = _run(["nova-manage", "--version"], _env(tmp_path, [standin]))
    assert (done.code, done.stdout) == (0, "34.0.0\n"), done
    # the console script hands over the same way, whatever its name
    done = _run([str(STANDIN_SCRIPT), "--version"], env)
    assert (done.code, done.stdout) == (0, "34.0.0\n"), done


def _tail(stderr: str) -> str:
    """stderr without eventlet's deprecation warnings, which name no argument."""
    return "\n".join(line for line in stderr.splitlines() if line.startswith(("usage", "nova")))


@pytest.fixture
def nova_made(nova_schema, tmp_path):
    """An API database and a cell database ([database]) with Nova's own schema."""
    token = os.urandom(4).hex()
    names = {"api": f"ctn_{token}_s_api", "main": f"ctn_{token}_s_main"}
    try:
        for kind, name in names.items():
            create_nova_database(name, kind, nova_schema)
        conf = write_nova_conf(tmp_path / "nova.conf", api=mysql_url(names["api"]),
                               database=mysql_url(names["main"]), transport_url=TRANSPORT_URL)
        yield conf, names
    finally:
        server_sql(*(f"DROP DATABASE IF EXISTS {name}" for name in names.values()))


@pytest.mark.nova
@pytest.mark.mysql
def test_nova_made_schema_is_novas(standin, tmp_path, nova_venv_path, nova_made):
    """On a Nova-made MariaDB the schema commands and Nova's own commands (archive,
    online data migrations) are the real nova-manage's: same output, same exit code."""
    conf, _ = nova_made
    real = nova_venv_path / "bin" / "nova-manage"
    config = (("file", str(conf)),)
    for command in (("api_db", "sync"), ("api_db", "version"), ("db", "sync", "--local_cell"),
                    ("db", "version")):
        assert cellctl_args(CommandLine(config, False, command), None) is None
    env = _env(tmp_path, [standin], real=real)
    cases = [["db", "version"], ["api_db", "version"], ["api_db", "sync"],
             ["db", "sync", "--local_cell"], ["db", "archive_deleted_rows", "--verbose"],
             ["db", "online_data_migrations"]]
    for argv in cases:
        direct = _run([str(real), "--config-file", str(conf), *argv], env)
        through = _run(["nova-manage", "--config-file", str(conf), *argv], env)
        assert (through.code, through.lines) == (direct.code, direct.lines), (argv, through)
        assert direct.code == 0, direct
    # without a real nova-manage: Nova's schema is not cellctl's to touch
    done = _run(["nova-manage", "--config-file", str(conf), "db", "sync"],
                _env(tmp_path, [standin]))
    assert (done.code, done.stdout) == (1, ""), done
    assert "no real nova-manage" in done.stderr


# --- devstack and grenade, end to end ---------------------------------------


class Deployment:
    """The side-by-side pair with ``n`` run by the real nova-manage alone and ``c`` by
    cellctl's nova-manage first on PATH with the real one behind it."""

    def __init__(self, pair: SideBySide, standin: Path, tmp_path: Path) -> None:
        self.pair = pair
        self.env = _env(tmp_path, [standin, pair.venv / "bin"])
        self.real = pair.venv / "bin" / "nova-manage"
        for side in pair.sides.values():  # devstack's conductor config, read second
            write_nova_conf(side.conf.with_name("nova_cell1.conf"), api=None,
                            database=side.url("cell1"), transport_url=TRANSPORT_URL)

    def argv(self, side: Side, program: str, args: tuple[str | DbUrl, ...]) -> list[str]:
        return [program, "--config-file", str(side.conf), *side.argv(args)]

    def step(self, *args: str | DbUrl, code: int = 0) -> tuple[Outcome, Outcome]:
        nova_side, ours_side = self.pair.nova, self.pair.ours
        commands = [self.argv(nova_side, str(self.real), args),
                    self.argv(ours_side, "nova-manage", args)]
        with ThreadPoolExecutor(2) as pool:  # MariaDB, not the CPU, is the slow part
            nova, ours = pool.map(lambda argv: _run(argv, self.env), commands)
        what = " ".join(commands[1])
        assert (nova.code, ours.code) == (code, code), f"{what}\n{nova}\n{ours}"
        self.pair.assert_same_state(what)
        return nova, ours

    def lines(self, side: Side, outcome: Outcome) -> list[str]:
        """stdout's lines with cell UUIDs and database names the same in both copies."""
        labels = self.pair._cell_labels(side.rows("api", "cell_mappings"))
        text = "\n".join(outcome.lines)
        for key, label in labels.items():
            if isinstance(key, str):
                text = text.replace(key, str(label))
        return re.sub(r"ctn_[0-9a-f]{8}_[nc]_", "ctn_<case>_", text).splitlines()


@pytest.mark.nova
@pytest.mark.mysql
def test_devstack_and_grenade_through_cellctl(side_by_side, standin, tmp_path):
    """devstack's lib/nova and tools/discover_hosts.sh, then grenade's upgrade.sh, on
    empty databases: Nova's migrations run for real (handed over), cellctl answers
    cell_v2; exit codes, resulting rows, Nova's schemas and cellctl's stdout match."""
    pair = side_by_side
    for role in ("api", "cell1", "cell1_cell0"):
        pair.empty_database(role)
    run = Deployment(pair, standin, tmp_path)

    # devstack lib/nova init_nova
    run.step("api_db", "sync")
    nova, ours = run.step("cell_v2", "map_cell0", "--database_connection", DbUrl("cell1_cell0"))
    assert nova.lines == ours.lines == []
    run.step("db", "sync")
    for side in pair.sides.values():
        assert schema_shape(side.engine("cell1_cell0")), "db sync made no cell0 schema"
    for role in ("api", "cell1", "cell1_cell0"):
        assert schema_shape(pair.ours.engine(role)) == schema_shape(pair.nova.engine(role)), role
    nova, ours = _create_cell(run)
    # the two "not provided in the command line" notices, then the new cell's UUID.
    # The notices' wording after "using the value" is not nova-manage's yet (cellctl
    # names the file that gave the value): compared up to there.
    head = [line.split(" using the value")[0] for line in run.lines(pair.nova, nova)]
    assert [line.split(" using the value")[0] for line in run.lines(pair.ours, ours)] == head
    assert head == ["--transport-url not provided in the command line,",
                    "--database_connection not provided in the command line,",
                    "<generated cell 1>"]
    # nova-compute starts on two hosts, then tools/discover_hosts.sh
    pair.add_services("cell1", [{"host": "cmp1"}, {"host": "cmp2"}])
    pair.add_compute_nodes("cell1", [{"host": "cmp1", "service_id": 1},
                                     {"host": "cmp2", "service_id": 2}])
    nova, ours = run.step("cell_v2", "discover_hosts", "--verbose")
    assert run.lines(pair.ours, ours) == run.lines(pair.nova, nova)
    assert len(pair.ours.rows("api", "host_mappings")) == 2
    nova, ours = run.step("cell_v2", "list_cells", "--verbose")
    pair.assert_same_table(nova, ours)
    # openstack-helm, kolla: online data migrations (handed over)
    run.step("db", "online_data_migrations")

    # grenade projects/60_nova/upgrade.sh: again, on a deployment that is set up
    run.step("api_db", "sync")
    run.step("db", "sync")
    nova, ours = run.step("cell_v2", "map_cell0", "--database_connection", DbUrl("cell1_cell0"))
    assert nova.lines == ours.lines == ["Cell0 is already setup"]
    nova, ours = run.step("cell_v2", "simple_cell_setup", "--transport-url", TRANSPORT_URL)
    assert run.lines(pair.ours, ours) == run.lines(pair.nova, nova)
    nova, ours = run.step("cell_v2", "list_cells")
    # Masked as nova-manage masks (doc/admin/nova-manage.rst, difference 3): cell0's
    # none:/// shows as none:/ in both, which openstack-helm writes back.
    theirs, mine = pair.table(pair.nova, nova), pair.table(pair.ours, ours)
    assert mine == theirs
    assert [row[2] for row in theirs] == ["Transport URL", "none:/",
                                          "rabbit://guest:****@127.0.0.1:5672/"]
    assert [c["uuid"] == CELL0_UUID for c in pair.ours.rows("api", "cell_mappings")] == [
        True, False]


def _create_cell(run: Deployment) -> tuple[Outcome, Outcome]:
    """devstack: ``--config-file $NOVA_CONF --config-file $(conductor_conf 1) cell_v2
    create_cell --name cell1`` (the URLs from the second file), with --verbose."""
    pair = run.pair
    commands = []
    for side, program in ((pair.nova, str(run.real)), (pair.ours, "nova-manage")):
        argv = run.argv(side, program, ())
        argv += ["--config-file", str(side.conf.with_name("nova_cell1.conf")),
                 "cell_v2", "create_cell", "--name", "cell1", "--verbose"]
        commands.append(argv)
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda argv: _run(argv, run.env), commands))
    nova, ours = outcomes
    assert (nova.code, ours.code) == (0, 0), f"{nova}\n{ours}"
    pair.assert_same_state("create_cell")
    return nova, ours


@pytest.mark.mysql
def test_schema_shape_helper_sees_tables():
    """The end-to-end test's schema comparison is not vacuous: an empty database has no
    shape, one table has one."""
    token = os.urandom(4).hex()
    name = f"ctn_{token}_s_shape"
    server_sql(f"CREATE DATABASE {name}")
    engine = server_engine(name)
    try:
        assert schema_shape(engine) == []
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id INT PRIMARY KEY)")
        assert len(schema_shape(engine)) == 1
    finally:
        engine.dispose()
        server_sql(f"DROP DATABASE {name}")


def test_db_sync_local_cell_leaves_cell0_alone(tmp_path):
    """nova-manage's ``db sync --local_cell``, which the stand-in passes on to cellctl:
    [database] only; without it, cell0 too."""
    import sqlalchemy as sa
    from click.testing import CliRunner

    from cellctl.cli import main

    conf = _sqlite_conf(tmp_path)
    cell0 = tmp_path / "cell0.db"
    runner = CliRunner(env={"CELLCTL_STATE_DIR": str(tmp_path / "state")})

    def cellctl(*args: str) -> None:
        result = runner.invoke(main, ["--config-file", str(conf), *args])
        assert result.exit_code == 0, result.output

    def tables(path: Path) -> set[str]:
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            return set(sa.inspect(engine).get_table_names())
        finally:
            engine.dispose()

    cellctl("api_db", "sync")
    cellctl("cell_v2", "map_cell0", "--database_connection", f"sqlite:///{cell0}")
    cellctl("db", "sync", "--local_cell")
    assert "instances" in tables(tmp_path / "cell.db")
    assert not cell0.exists() or tables(cell0) == set()
    cellctl("db", "sync")
    assert "instances" in tables(cell0)


@pytest.mark.nova
def test_hand_over_is_exec(standin, tmp_path, nova_venv_path):
    """The stand-in becomes the real nova-manage (same process), so a signal sent to
    the process a tool started reaches the real one and its death is the exit status."""
    import signal
    import time

    real = nova_venv_path / "bin" / "nova-manage"
    proc = subprocess.Popen(["nova-manage", "--version"], env=_env(tmp_path, [standin], real),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    deadline = time.monotonic() + 60
    try:
        while str(real).encode() not in cmdline.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, "no exec seen"
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
