"""cellctl in nova-manage's place, chosen by the name it runs under (as ccache stands in for gcc).

Run as ``nova-manage`` (a symlink to ``cellctl`` of that name, or the
``cellctl-nova-manage`` console script), cellctl reads nova-manage's command
line: oslo.config's global options first, then the category. It answers

- ``cell_v2 <command>`` for nova-manage's twelve ``cell_v2`` commands with
  nova-manage 34's options (``CELL_V2_OPTIONS``; unambiguous prefixes as argparse
  takes them), exactly as ``cellctl cell_v2 <command>`` does: a command line
  with cellctl's own options (``--format``, ``--cell``, ``--dry-run``, ...) is
  not nova-manage's, and goes to the real nova-manage, which refuses it;
- ``api_db sync|version`` and ``db sync|version`` when the database they are
  about has cellctl's schema (or none and there is no real nova-manage):
  Nova's schema is Nova's to migrate;
- all of them only where a configuration file (or a variable) names the
  databases: without one, cellctl would use its embedded databases, which
  nova-manage does not have, so the real nova-manage answers (and fails);

and hands every other command line, unchanged (same arguments, same
environment, ``exec`` so signals and the exit code are the real one's), to the
real nova-manage: ``CELLCTL_NOVA_MANAGE`` if set, else ``nova-manage.real``
beside the program as invoked (where an install moved the real one aside),
else the first ``nova-manage`` on ``PATH`` that is not cellctl. Without one, a command line
cellctl does not answer is one line on stderr and exit 1.

This module imports only the standard library at its top: handing over costs
no more than ``cellctl --version`` (click and the command table, about 0.1 s)
before the ``exec``; the database and settings modules load only to answer
or to tell whose schema a ``sync`` is for.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NoReturn

PROG = "nova-manage"
REAL_NOVA_MANAGE = "CELLCTL_NOVA_MANAGE"

# nova-manage 34's global options (oslo.config's and oslo.log's, as
# ``nova-manage --help`` lists them): spelling -> (meaning, takes a value).
_GLOBAL_OPTIONS: dict[str, tuple[str, bool]] = {
    "--config-file": ("config-file", True),
    "--config-dir": ("config-dir", True),
    "--debug": ("debug", False),
    "-d": ("debug", False),
    "--nodebug": ("nodebug", False),
    "--log-config-append": ("log", True),
    "--log-config": ("log", True),
    "--log_config": ("log", True),
    "--log-date-format": ("log", True),
    "--log-dir": ("log", True),
    "--logdir": ("log", True),
    "--log-file": ("log", True),
    "--logfile": ("log", True),
    "--syslog-log-facility": ("log", True),
    "--use-syslog": ("log", False),
    "--nouse-syslog": ("log", False),
    "--use-journal": ("log", False),
    "--nouse-journal": ("log", False),
    "--use-json": ("log", False),
    "--nouse-json": ("log", False),
    "--post-mortem": ("log", False),
    "--nopost-mortem": ("log", False),
    # Only the real nova-manage answers these.
    "-h": ("nova", False),
    "--help": ("nova", False),
    "--version": ("nova", False),
    "--shell_completion": ("nova", True),
}

# nova-manage 34's ``cell_v2`` commands and each one's options (as ``nova-manage cell_v2
# <command> --help`` lists them): spelling -> takes a value. Under nova-manage's name
# cellctl answers only these spellings (and argparse's unambiguous prefixes of them);
# a command line with any other option (cellctl's own ``--format``, ``--cell``,
# ``--dry-run``, ``--wait-for``, ``--cell-uuid``, ...) is nova-manage's to refuse, as it
# refuses it without cellctl: no program sees cellctl's extra flags under this name.
CELL_V2_OPTIONS: dict[str, dict[str, bool]] = {
    "simple_cell_setup": {"--transport-url": True},
    "map_cell0": {"--database_connection": True},
    "map_instances": {"--cell_uuid": True, "--max-count": True, "--reset": False},
    "map_cell_and_hosts": {"--transport-url": True, "--name": True, "--verbose": False},
    "verify_instance": {"--uuid": True, "--quiet": False},
    "create_cell": {"--name": True, "--transport-url": True, "--database_connection": True,
                    "--verbose": False, "--disabled": False},
    "list_cells": {"--verbose": False},
    "delete_cell": {"--force": False, "--cell_uuid": True},
    "list_hosts": {"--cell_uuid": True},
    "update_cell": {"--cell_uuid": True, "--name": True, "--transport-url": True,
                    "--database_connection": True, "--disable": False, "--enable": False},
    "discover_hosts": {"--cell_uuid": True, "--verbose": False, "--strict": False,
                       "--by-service": False},
    "delete_host": {"--cell_uuid": True, "--host": True},
}
CELL_V2_COMMANDS = frozenset(CELL_V2_OPTIONS)
# argparse reads a token like this as a value, not as an option (no option of these
# commands looks like a negative number): ``--max-count -1`` is map_instances' 127.
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")

ConfigPath = tuple[Literal["file", "dir"], str]


@dataclass(frozen=True)
class CommandLine:
    """What cellctl needs of nova-manage's command line."""

    config_paths: tuple[ConfigPath, ...]  # --config-file/--config-dir, in order
    debug: bool
    command: tuple[str, ...]  # the category and everything after it


class NoRealNovaManage(Exception):
    """There is no real nova-manage to hand a command line to."""


def parse(args: Sequence[str]) -> CommandLine | None:
    """nova-manage's command line (program name excluded), as argparse reads it.

    None when only the real nova-manage can answer it: ``--help``,
    ``--version``, an option nova-manage does not have, an ambiguous prefix,
    a missing value (argparse's error is then nova-manage's own).
    """
    config: list[ConfigPath] = []
    debug = False
    index = 0
    while index < len(args):
        token = args[index]
        if not token.startswith("-") or token == "-":
            return CommandLine(tuple(config), debug, tuple(args[index:]))
        flag, eq, value = token.partition("=")
        spelling = _option(flag, _GLOBAL_OPTIONS)
        if spelling is None:
            return None
        meaning, takes_value = _GLOBAL_OPTIONS[spelling]
        if meaning == "nova" or (eq and not takes_value):
            return None
        if takes_value and not eq:
            index += 1
            if index == len(args) or args[index].startswith("-"):
                return None
            value = args[index]
        if meaning in ("config-file", "config-dir"):
            config.append(("file" if meaning == "config-file" else "dir", value))
        elif meaning in ("debug", "nodebug"):
            debug = meaning == "debug"
        index += 1
    return None  # no category: argparse's error


def _option(flag: str, known: Mapping[str, object]) -> str | None:
    """The option argparse takes ``flag`` for: its exact spelling, else the only
    spelling it is a prefix of (argparse calls two or more ambiguous)."""
    if flag in known:
        return flag
    if not flag.startswith("--") or flag == "--":
        return None
    matches = [spelling for spelling in known if spelling.startswith(flag)]
    return matches[0] if len(matches) == 1 else None


# --- which command lines cellctl answers -----------------------------------


def cellctl_args(line: CommandLine, real: str | None) -> list[str] | None:
    """cellctl's own command line for ``line``, or None: the real nova-manage's to answer.

    ``real`` is the real nova-manage, if there is one: a schema neither Nova
    nor cellctl made yet is then Nova's to create.
    """
    command = _cellctl_command(line, real)
    if command is None:
        return None
    options = [option for kind, path in line.config_paths
               for option in (f"--config-{kind}", path)]
    return [*options, *(["--debug"] if line.debug else []), *command]


def _cellctl_command(line: CommandLine, real: str | None) -> list[str] | None:
    category, *rest = line.command
    if category == "cell_v2":
        if not rest or rest[0] not in CELL_V2_COMMANDS:
            return None
        options = _cell_v2_options(rest[0], rest[1:])
        if options is None or without_configuration(line.config_paths):
            return None
        return ["cell_v2", rest[0], *options]
    if category in ("api_db", "db") and rest and rest[0] in ("sync", "version"):
        command = _schema_command(category, rest[0], rest[1:])
        if command is None or without_configuration(line.config_paths):
            return None
        owner = schema_owner(line.config_paths, "api" if category == "api_db" else "cell")
        if owner == "cellctl" or (owner != "nova" and real is None):
            return command
    return None


def _cell_v2_options(command: str, args: Sequence[str]) -> list[str] | None:
    """``args`` with each option in nova-manage's full spelling (argparse's unambiguous
    prefixes expanded; ``--opt=value`` kept in that form), or None when nova-manage 34
    would refuse them: an option the command does not have (cellctl's own included), an
    ambiguous prefix, a value missing or given to a flag, a positional argument,
    ``-h``/``--help`` (nova-manage's own text)."""
    known = CELL_V2_OPTIONS[command]
    result: list[str] = []
    index = 0
    while index < len(args):
        flag, eq, value = args[index].partition("=")
        spelling = _option(flag, known) if flag.startswith("--") else None
        if spelling is None:
            return None
        takes_value = known[spelling]
        if eq:
            if not takes_value:
                return None
            result.append(f"{spelling}={value}")
        elif takes_value:
            index += 1
            if index == len(args) or (args[index].startswith("-")
                                      and not _NEGATIVE_NUMBER.match(args[index])):
                return None
            result.extend((spelling, args[index]))
        else:
            result.append(spelling)
        index += 1
    return result


def _schema_command(category: str, action: str, args: Sequence[str]) -> list[str] | None:
    """``db sync [--local_cell] [VERSION]``, ``api_db sync [VERSION]``, ``... version``."""
    known = {"-h": None, "--help": None, **({"--local_cell": None} if
                                            (category, action) == ("db", "sync") else {})}
    options: list[str] = []
    positional: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            spelling = _option(arg, known) if "=" not in arg else None
            if spelling != "--local_cell":
                return None
            options = [spelling]
        else:
            positional.append(arg)
    if len(positional) > (1 if action == "sync" else 0):
        return None
    return [category, action, *options, *positional]


def without_configuration(config_paths: Sequence[ConfigPath]) -> bool:
    """Whether no configuration file (given or found by the default search) nor variable
    names a database: cellctl would use its embedded databases, which nova-manage does
    not have. Its command line is then the real nova-manage's to answer (and to fail)."""
    try:
        from cellctl.settings import resolve

        settings = resolve(config_paths=config_paths, from_cli=True, embedded=False)
    except Exception:  # a configuration cellctl rejects: cellctl reports it
        return False
    return not settings.read and (settings.api_database_connection.value is None
                                  or settings.database_connection.value is None)


def schema_owner(config_paths: Sequence[ConfigPath],
                 kind: Literal["api", "cell"]) -> str | None:
    """"cellctl", "nova" or "none" for the API (or ``[database]``) database; None when
    it cannot be told (no such setting, a bad configuration, a database not answering)."""
    try:
        from cellctl import migrate
        from cellctl.db import create_engine
        from cellctl.settings import resolve

        settings = resolve(config_paths=config_paths, from_cli=True)
        setting = (settings.api_database_connection if kind == "api"
                   else settings.database_connection)
        url = setting.value
        if not url:
            return None
        if url in settings.embedded_urls:
            return "cellctl"
        engine = create_engine(url, label="database")
        try:
            return migrate.schema_state(engine, kind).owner
        finally:
            engine.dispose()
    except Exception:  # cannot tell: whoever answers reports it
        return None


# --- the real nova-manage ---------------------------------------------------


def real_nova_manage(environ: Mapping[str, str], self_path: str) -> str:
    """The real nova-manage's path; NoRealNovaManage saying why there is none."""
    given = environ.get(REAL_NOVA_MANAGE)
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise NoRealNovaManage(f"{REAL_NOVA_MANAGE}={given} is not an executable file")
        if is_cellctl(given, self_path):
            raise NoRealNovaManage(
                f"{REAL_NOVA_MANAGE}={given} is cellctl itself, not the real nova-manage: "
                "refusing to run it (it would hand the command to itself forever)")
        return given
    beside = os.path.join(os.path.dirname(self_path), PROG + ".real")
    candidates = [beside] + [os.path.join(directory or ".", PROG)
                             for directory in environ.get("PATH", os.defpath).split(os.pathsep)]
    for candidate in candidates:
        if (os.path.isfile(candidate) and os.access(candidate, os.X_OK)
                and not is_cellctl(candidate, self_path)):
            return candidate
    raise NoRealNovaManage(
        f"no real nova-manage: set {REAL_NOVA_MANAGE} to its path, name it {PROG}.real "
        "beside cellctl's nova-manage, or put it on PATH after cellctl's")


_CELLCTL_SCRIPT = re.compile(rb"^\s*(from|import)\s+cellctl[\s.]", re.MULTILINE)


def is_cellctl(path: str, self_path: str) -> bool:
    """Whether ``path`` runs cellctl: the program running now, or a console script of cellctl."""
    if os.path.realpath(path) == os.path.realpath(self_path):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return False
    return _CELLCTL_SCRIPT.search(head) is not None


# --- the entry point --------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Answer nova-manage's command line ``argv`` (default ``sys.argv``), or hand it over."""
    argv = list(sys.argv if argv is None else argv)
    try:
        real: str | None = real_nova_manage(os.environ, argv[0])
        reason = ""
    except NoRealNovaManage as exc:
        real, reason = None, str(exc)
    line = parse(argv[1:])
    args = None if line is None else cellctl_args(line, real)
    if args is not None:
        from cellctl.cli import main as cellctl

        cellctl.main(args=args, prog_name=PROG)
        sys.exit(0)  # not reached: click exits with the command's code
    if real is None:
        from cellctl.urls import mask_urls_in_text

        wanted = mask_urls_in_text(" ".join(argv[1:])) or "(no arguments)"
        if line is not None and line.command[:1] in (("cell_v2",), ("api_db",), ("db",)) \
                and without_configuration(line.config_paths):
            reason = ("no configuration file given or found (nova-manage's default search) "
                      "and cellctl's embedded databases are not nova-manage's; and " + reason)
        elif line is not None and line.command[:1] == ("cell_v2",) and len(line.command) > 1 \
                and line.command[1] in CELL_V2_COMMANDS:
            reason = (f"not nova-manage 34's options for cell_v2 {line.command[1]} (cellctl's "
                      f"own options are for 'cellctl cell_v2 {line.command[1]}'), and {reason}")
        sys.stderr.write(f"{PROG} (cellctl): cannot answer '{wanted}': {reason}\n")
        sys.exit(1)
    os.execv(real, [real, *argv[1:]])
