"""The ``cellctl`` command line: parse, call one operation, render its Result.

Commands live in one module per area (cells, schema, config, ...); each
registers itself both at the top level and under ``cell_v2`` so scripts
written for ``nova-manage cell_v2`` work with only the program name changed.
Only click is imported at start-up, and only the module of the command that runs
(COMMAND_MODULES): ``cellctl --help`` must stay fast.
"""

from __future__ import annotations

import shutil
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

import click

from cellctl import __version__
from cellctl.cli.arguments import BadInput
from cellctl.errors import CellctlError, ConfigError
from cellctl.render import FORMATS, error_line, render

if TYPE_CHECKING:
    from cellctl.db import Databases
    from cellctl.progress import Progress
    from cellctl.result import Result
    from cellctl.settings import ConfigPath, Settings

UNEXPECTED_ERROR = 255  # as nova-manage: 1 is flow control for some commands
NOVA_ERROR_PREFIX = "An error has occurred:"  # nova-manage's line before a crash's traceback

# Commands under nova-manage's names (``cellctl X`` or ``cellctl cell_v2 X``):
# deployment tools read their stdout and exit codes, so in table format these
# print what nova-manage prints, where it prints it (doc/admin/nova-manage.rst).
NOVA_COMMANDS = frozenset({
    "map_cell0", "create_cell", "list_cells", "update_cell", "delete_cell",
    "discover_hosts", "map_cell_and_hosts", "list_hosts", "delete_host",
    "map_instances", "verify_instance", "simple_cell_setup",
    "api_db sync", "api_db version", "db sync", "db version",
})

# Whether a command writes, declared where it is registered: ``writes=True`` or
# ``False``, or a function of its parsed parameters (``audit`` writes only with
# ``--fix``). A command that writes is told, on stderr, when it runs on cellctl's
# embedded default (no configuration file given or found).
Writes = bool | Callable[[Mapping[str, Any]], bool]

# cellctl's own listings say so on stderr when nothing matched (nova-manage's keep
# their empty tables, as scripts expect).
EMPTY_SAID = {
    "ironic ring": "No Ironic nodes: no nova-compute service reports a node "
                   "(hypervisor_type ironic) in the cells read, or none matches the filters.",
    "ironic owners": "Nothing to list: no Ironic node (with --services: no ironic "
                     "nova-compute service) in the cells read, or none matches the filters.",
    "service list": "No services: the cells read hold no service row (cell0 never does).",
}


class App:
    """Global options, and the settings and databases resolved from them on first use."""

    def __init__(self, *, config_paths: tuple[ConfigPath, ...],
                 api_database_connection: str | None, debug: bool, fmt: str | None,
                 demo: bool = False) -> None:
        self.demo = demo
        self.config_paths = config_paths
        self.api_database_connection = api_database_connection
        self.debug = debug
        self.fmt = fmt
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None and self.demo:
            from cellctl.demo import demo_settings

            self._settings = demo_settings(self.config_paths, self.api_database_connection)
        if self._settings is None:
            from cellctl.settings import resolve

            self._settings = resolve(
                config_paths=self.config_paths,
                api_database_connection=self.api_database_connection,
                from_cli=True,
            )
        return self._settings


class Command(click.Command):
    """Accepts unambiguous prefixes of long options, as nova-manage's argparse does, and
    says whether it writes (``writes=``, required: tests/test_config_cli.py checks)."""

    def __init__(self, *args: Any, writes: Writes | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writes = writes

    def writes_with(self, params: Mapping[str, Any]) -> bool:
        """Whether this run may write; a command that did not say is taken to write."""
        if callable(self.writes):
            return self.writes(params)
        return self.writes is not False

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        owners: dict[str, str | None] = {
            opt: param.name for param in self.get_params(ctx)
            for opt in param.opts + param.secondary_opts if opt.startswith("--")
        }
        return super().parse_args(ctx, [_expand_prefix(arg, owners) for arg in args])


def _expand_prefix(arg: str, owners: Mapping[str, str | None]) -> str:
    """``--cell`` -> ``--cell_uuid`` when only one option starts so.

    Two spellings of one option (``--cell_uuid``, ``--cell-uuid``) count once.
    """
    if not arg.startswith("--") or arg == "--":
        return arg
    flag, eq, value = arg.partition("=")
    if flag in owners:
        return arg
    matches = [name for name in owners if name.startswith(flag)]
    if matches and len({owners[name] for name in matches}) == 1:
        return matches[0] + eq + value
    return arg


class Group(click.Group):
    command_class = Command


# The module (under cellctl.cli) that registers each top-level command, and whether it
# also answers under cell_v2. A command's module is imported only when that command
# runs (or --help lists every one): start-up pays for one area's imports, not twelve.
# tests/test_cli.py checks this map against what the modules register.
COMMAND_MODULES: dict[str, tuple[str, bool]] = {
    "api_db": ("schema", False), "db": ("schema", False),
    "audit": ("audit", False), "cell": ("cell", False), "config": ("config", False),
    "dev": ("dev", False), "ironic": ("ironic", False),
    "create_cell": ("cells", True), "delete_cell": ("cells", True),
    "list_cells": ("cells", True), "map_cell0": ("cells", True),
    "update_cell": ("cells", True),
    "delete_host": ("hosts", True), "discover_hosts": ("hosts", True),
    "list_hosts": ("hosts", True), "map_cell_and_hosts": ("hosts", True),
    "map_instances": ("instances", True), "verify_instance": ("instances", True),
    "service": ("services", True), "simple_cell_setup": ("setup", True),
    "status": ("status", True),
}


class LazyGroup(Group):
    """Lists every command of COMMAND_MODULES; imports a command's module when it is asked for."""

    cell_v2_only = False

    def _lazy_names(self) -> set[str]:
        return {name for name, (_module, under_cell_v2) in COMMAND_MODULES.items()
                if under_cell_v2 or not self.cell_v2_only}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | self._lazy_names())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self._lazy_names():
            import importlib

            importlib.import_module(f"cellctl.cli.{COMMAND_MODULES[cmd_name][0]}")
        return super().get_command(ctx, cmd_name)


class CellV2Group(LazyGroup):
    cell_v2_only = True


def load_all_commands() -> None:
    """Import every command's module, so ``main.commands`` holds them all (docs, tests)."""
    import importlib

    for module in sorted({module for module, _ in COMMAND_MODULES.values()}):
        importlib.import_module(f"cellctl.cli.{module}")


class MainGroup(LazyGroup):
    """Remembers the order of --config-file and --config-dir: oslo.config reads each
    where it stands on the command line (a directory after a file overrides it).

    Run as ``nova-manage`` (a symlink), the program stands in for nova-manage
    instead: ``cellctl.console.main`` dispatches on the program name."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["cellctl.config_order"] = _config_order(self, ctx, args)
        return super().parse_args(ctx, args)


_CONFIG_OPTIONS = {"--config-file": "file", "--config-dir": "dir"}


def _config_order(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """"file"/"dir" for each --config-file/--config-dir before the command name."""
    takes_value = {opt for param in group.get_params(ctx) if isinstance(param, click.Option)
                   and not param.is_flag for opt in param.opts}
    order: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--" or not token.startswith("-"):
            break
        name, eq, _ = token.partition("=")
        if name in _CONFIG_OPTIONS:
            order.append(_CONFIG_OPTIONS[name])
        if name in takes_value and not eq:
            next(tokens, None)
    return order


def _ordered(order: list[str], files: tuple[str, ...],
             dirs: tuple[str, ...]) -> tuple[ConfigPath, ...]:
    if sorted(order) != sorted(["file"] * len(files) + ["dir"] * len(dirs)):
        order = ["file"] * len(files) + ["dir"] * len(dirs)  # not expected: files first
    queues = {"file": list(files), "dir": list(dirs)}
    return tuple(("file" if kind == "file" else "dir", queues[kind].pop(0)) for kind in order)


@click.group(cls=MainGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="cellctl")
@click.option("--config-file", "config_files", multiple=True, metavar="PATH",
              help="Configuration file, read as nova-manage reads it; repeatable, later "
                   "files win. Default: nova-manage's search (~/.nova/nova.conf, "
                   "~/nova.conf, /etc/nova/nova.conf, /etc/nova.conf).")
@click.option("--config-dir", "config_dirs", multiple=True, metavar="DIR",
              help="Directory whose files ending in .conf are read, sorted, where the "
                   "option stands among the --config-file options; repeatable. Default: "
                   "nova.conf.d in the same places.")
@click.option("--api-database-connection", metavar="URL",
              help="SQLAlchemy URL of the API database.")
@click.option("--demo", is_flag=True, envvar="CELLCTL_DEMO",
              help="Use only cellctl's own databases (SQLite in CELLCTL_STATE_DIR, an "
                   "in-memory queue): every nova.conf and CELLCTL_*/OS_* setting is ignored, "
                   "so nothing of a deployment is touched. Also CELLCTL_DEMO=1.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Output format for data (default: table).")
@click.pass_context
def main(ctx: click.Context, config_files: tuple[str, ...], config_dirs: tuple[str, ...],
         api_database_connection: str | None, demo: bool, debug: bool,
         fmt: str | None) -> None:
    """Manage the cells v2 control plane: cells, host and instance mappings, services."""
    paths = _ordered(ctx.meta.get("cellctl.config_order", []), config_files, config_dirs)
    ctx.obj = App(config_paths=paths, api_database_connection=api_database_connection,
                  debug=debug, fmt=fmt, demo=demo)


@main.group(cls=CellV2Group, name="cell_v2")
def cell_v2() -> None:
    """The same commands, as `nova-manage cell_v2 <command>` spells them."""


def register(command: click.Command) -> click.Command:
    """Make ``command`` answer both as ``cellctl X`` and ``cellctl cell_v2 X``."""
    main.add_command(command)
    cell_v2.add_command(command)
    return command


def format_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--format`` after the command name; it overrides the global one."""
    return click.option("--format", "fmt", type=click.Choice(FORMATS),
                        help="Output format (default: the global --format, else table).")(func)


def dry_run_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--dry-run`` of the delete commands (``delete_cell``, ``delete_host``), which
    then write nothing (``writes=unless_dry_run``)."""
    return click.option("--dry-run", "dry_run", is_flag=True,
                        help="Write nothing: explain what stands in the way, what would "
                             "remain and what to run first; exit with the code the delete "
                             "would have.")(func)


def unless_dry_run(params: Mapping[str, Any]) -> bool:
    """``writes=`` of a command with ``dry_run_option``: it writes unless --dry-run."""
    return not params.get("dry_run")


def test_data_force_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--force`` of the commands that write test data (``dev``, ``service register``
    and ``heartbeat``): write even where a real deployment's rows are."""
    return click.option("--force", is_flag=True,
                        help="Write even into a deployment's cell database: one a nova.conf "
                             "found by the default search names, or one holding compute "
                             "nodes Nova reported.")(func)


class _TerminalProgress:
    """A click progress bar on stderr."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, label: str, total: int | None) -> None:
        self.finish()
        self._bar = click.progressbar(length=total, label=label, file=sys.stderr,
                                      show_pos=True, show_eta=total is not None)
        self._bar.__enter__()

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def progress_for(fmt: str | None = None) -> Progress:
    """A bar when a person watches stderr; nothing extra when piped or in JSON/CSV mode."""
    from cellctl.progress import NO_PROGRESS

    ctx = click.get_current_context()
    app = ctx.find_object(App)
    fmt = fmt or (app.fmt if app else None) or "table"
    if fmt == "table" and sys.stderr.isatty():
        return _TerminalProgress()
    return NO_PROGRESS


def run(
    operation: Callable[[Databases], Result],
    *,
    failure_code: int = 1,
    fmt: str | None = None,
    show_secrets: bool = False,
) -> NoReturn:
    """Run one operation and exit with its code.

    ``failure_code`` is what this command exits with when it cannot produce a
    result at all (bad settings, a database it cannot use): the code the
    contract gives that command for failure or bad input.
    """
    ctx = click.get_current_context()
    app = ctx.find_object(App)
    assert app is not None
    fmt = fmt or app.fmt or "table"
    nova_face = _command_name(ctx) in NOVA_COMMANDS
    dbs: Databases | None = None
    try:
        from cellctl.db import Databases

        dbs = Databases(app.settings)
        _embedded_note(ctx, app.settings, fmt)
        result = operation(dbs)
    except BadInput as exc:  # said as the operation would say it: no traceback
        for line in str(exc).splitlines():
            error_line(line, fmt, nova_face=nova_face)
        ctx.exit(exc.code if exc.code is not None else failure_code)
    except CellctlError as exc:
        _unless_interrupted()
        # A configuration that cannot be read stops nova-manage before its command
        # runs (oslo.config's error, on stderr): only the command's own errors move.
        _report(app, exc, str(exc), fmt,
                nova_face=nova_face and not isinstance(exc, ConfigError))
        ctx.exit(exc.code if exc.code is not None else failure_code)
    except KeyboardInterrupt:
        error_line("Interrupted", fmt)
        ctx.exit(130)
    except Exception as exc:  # the promise: no traceback without --debug
        _unless_interrupted()
        line = f"{type(exc).__name__}: {exc}"
        if nova_face and fmt == "table":
            # nova-manage prints its prefix, then the traceback, on stdout; the
            # traceback's last line is the one kept here.
            click.echo(NOVA_ERROR_PREFIX)
        else:
            line = f"An unexpected error occurred: {line}"
        _report(app, exc, line, fmt, nova_face=nova_face)
        ctx.exit(UNEXPECTED_ERROR)
    finally:
        if dbs is not None:
            dbs.dispose()
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    render(result, fmt, show_secrets=show_secrets, nova_face=nova_face, width=width)
    name = _command_name(ctx)
    if fmt == "table" and result.table is not None and not result.table.rows \
            and name in EMPTY_SAID:
        sys.stderr.write(EMPTY_SAID[name] + "\n")
    if fmt == "table":  # stderr: stdout stays nova-manage's bytes (JSON/CSV carry the data)
        from cellctl.cli.summary import summary_line

        summary = summary_line(name, result.data)
        if summary:
            sys.stderr.write(summary + "\n")
    ctx.exit(result.code)


def _unless_interrupted() -> None:
    """A driver may turn a signal into its own error: the signal wins (cellctl.interrupts)."""
    from cellctl.interrupts import Interrupted, received

    if received() is not None:
        raise Interrupted(received())


def _embedded_note(ctx: click.Context, settings: Settings, fmt: str) -> None:
    """Say once, before a command writes, that it writes to the embedded default."""
    app = ctx.find_object(App)
    note = None if app is not None and app.demo else settings.embedded_note  # asked for
    command = ctx.command
    if note is None or (isinstance(command, Command) and not command.writes_with(ctx.params)):
        return
    from cellctl.result import Message, Result

    render(Result(messages=[Message("warning", note)]), fmt)


def _report(app: App, exc: BaseException, line: str, fmt: str, *,
            nova_face: bool = False) -> None:
    from cellctl.urls import mask_urls_in_text

    if app.debug:
        traceback.print_exception(exc, file=sys.stderr)
    error_line(mask_urls_in_text(line.splitlines()[0] if line else line), fmt,
               nova_face=nova_face)


def _command_name(ctx: click.Context) -> str:
    """"service list" for ``cellctl cell_v2 service list``."""
    names: list[str] = []
    current: click.Context | None = ctx
    while current is not None and current.parent is not None:
        if current.info_name != "cell_v2" or current.parent.parent is not None:
            names.append(current.info_name or "")
        current = current.parent
    return " ".join(reversed(names))
