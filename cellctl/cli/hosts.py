"""Host commands: discover_hosts, map_cell_and_hosts, list_hosts, delete_host."""

from __future__ import annotations

import click

from cellctl.cli import (
    Command,
    dry_run_option,
    format_option,
    progress_for,
    register,
    run,
    unless_dry_run,
)
from cellctl.cli.cellopt import CELL_UUID_FLAGS, cell_option, chosen_cell


@register
@click.command("discover_hosts", cls=Command, writes=True)
@click.option(*CELL_UUID_FLAGS, "cell_uuid", metavar="UUID",
              help="Only this cell (default: every cell).")
@cell_option
@click.option("--verbose", is_flag=True, help="Say what was found and mapped in each cell.")
@click.option("--strict", is_flag=True, help="Exit 1 when no new host was mapped.")
@click.option("--by-service", "by_service", is_flag=True,
              help="Map nova-compute services instead of compute nodes (hosts without nodes).")
@click.option("--wait-for", "wait_for", type=click.IntRange(min=1), metavar="N",
              help="First wait until N compute hosts are registered in the cells.")
@click.option("--expect", "expect", multiple=True, metavar="HOST[,HOST...]",
              help="First wait until these compute hosts are registered (repeatable).")
@click.option("--timeout", "timeout", type=click.FloatRange(min=0), default=300.0,
              show_default=True, help="Seconds to wait with --wait-for/--expect (exit 3 after).")
@click.option("--interval", "interval", type=click.FloatRange(min=0.1), default=5.0,
              show_default=True, help="Seconds between two looks while waiting.")
@click.option("--up", "up", is_flag=True,
              help="While waiting, count only hosts whose service is up (service group).")
@format_option
def discover_hosts(cell_uuid: str | None, cell: str | None, verbose: bool, strict: bool,
                   by_service: bool, wait_for: int | None, expect: tuple[str, ...],
                   timeout: float, interval: float, up: bool, fmt: str | None) -> None:
    """Map every compute host that has no host mapping yet.

    Exit 0 ok; 1 with --strict and nothing new, an unknown cell, any error, or a
    cell whose database could not be read (the others are still mapped);
    2 collided with a concurrent writer (safe to retry); 3 with --wait-for/--expect,
    the hosts did not all register (or come up) in time (what came is mapped);
    9 --cell names several cells.
    """
    from cellctl.cells.waiting import WaitSpec
    from cellctl.ops import hosts

    chosen = chosen_cell(cell_uuid, cell, required=False)
    names = tuple(dict.fromkeys(h.strip() for arg in expect for h in arg.split(",")
                                if h.strip()))
    if wait_for is not None and names:
        raise click.UsageError("Give --wait-for or --expect, not both.")
    ctx = click.get_current_context()
    if wait_for is None and not names and (up or any(
            ctx.get_parameter_source(p) is not click.core.ParameterSource.DEFAULT
            for p in ("timeout", "interval"))):
        raise click.UsageError("--timeout, --interval and --up go with --wait-for or --expect.")
    wait = (WaitSpec(count=wait_for, expect=names, timeout=timeout, interval=interval, up=up)
            if wait_for is not None or names else None)
    progress = progress_for(fmt)
    run(lambda dbs: hosts.discover_hosts(
        dbs, cell_uuid=chosen, verbose=verbose, strict=strict, by_service=by_service,
        progress=progress, wait=wait,
    ), fmt=fmt)


@register
@click.command("map_cell_and_hosts", cls=Command, writes=True)
@click.option("--transport-url", metavar="URL", help="The cell's message queue.")
@click.option("--name", help="A name for the cell, if one is created.")
@click.option("--verbose", is_flag=True, help="Say which hosts are already mapped; print the "
                                              "cell's UUID when hosts were mapped.")
@format_option
def map_cell_and_hosts(transport_url: str | None, name: str | None, verbose: bool,
                       fmt: str | None) -> None:
    """Map [database] as a cell, with its compute hosts.

    Exit 0 ok (also when there is no host), 1 transport URL missing or invalid,
    255 a database could not be used.
    """
    from cellctl.ops import hosts

    progress = progress_for(fmt)
    run(lambda dbs: hosts.map_cell_and_hosts(
        dbs, transport_url=transport_url, name=name, verbose=verbose, progress=progress,
    ), failure_code=255, fmt=fmt)


@register
@click.command("list_hosts", cls=Command, writes=False)
@click.option(*CELL_UUID_FLAGS, "cell_uuid", metavar="UUID", help="Only this cell's hosts.")
@cell_option
@click.option("--status", is_flag=True,
              help="Add each host's compute service state, read from its cell.")
@format_option
def list_hosts(cell_uuid: str | None, cell: str | None, status: bool, fmt: str | None) -> None:
    """List host mappings sorted by host. Exit 0, 1 cell not found, 9 --cell names
    several cells."""
    from cellctl.ops import hosts

    chosen = chosen_cell(cell_uuid, cell, required=False)
    run(lambda dbs: hosts.list_hosts(dbs, cell_uuid=chosen, status=status),
        failure_code=255, fmt=fmt)


@register
@click.command("delete_host", cls=Command,
               writes=unless_dry_run)
@click.option(*CELL_UUID_FLAGS, "cell_uuid", metavar="UUID", help="The cell (required, or --cell).")
@cell_option
@click.option("--host", required=True, help="The host whose mapping is deleted.")
@dry_run_option
@format_option
def delete_host(cell_uuid: str | None, cell: str | None, host: str, dry_run: bool,
                fmt: str | None) -> None:
    """Delete a host mapping.

    Exit 0 deleted, 1 cell not found, 2 host not found, 3 host in another cell,
    4 host has instances, 9 --cell names several cells, 255 a database could not
    be used. With --format json a refusal lists its reasons.
    """
    from cellctl.ops import hosts

    chosen = chosen_cell(cell_uuid, cell, required=True)
    assert chosen is not None
    run(lambda dbs: hosts.delete_host(dbs, cell_uuid=chosen, host=host, dry_run=dry_run),
        failure_code=255, fmt=fmt)
