"""``cellctl dev``: developer helpers for demos, tests and benchmarks (not nova-manage's)."""

from __future__ import annotations

import click

from cellctl.cli import Group, format_option, main, progress_for, run, test_data_force_option


@main.group("dev", cls=Group)
def dev() -> None:
    """Developer helpers: fake data in cellctl's own databases, never Nova's."""


@dev.command("add-instances", writes=True)
@click.option("--count", type=int, required=True, help="How many instances to add.")
@click.option("--host", help="The compute host they run on (default: none).")
@click.option("--deleted", type=int, default=0, show_default=True,
              help="How many of them (the oldest) are soft-deleted.")
@click.option("--node", metavar="UUID", help="The Ironic node they run on (needs --host).")
@click.option("--ironic", is_flag=True,
              help="One instance on each of --count Ironic nodes of --host that have none.")
@test_data_force_option
@format_option
def add_instances(count: int, host: str | None, deleted: int, node: str | None, ironic: bool,
                  force: bool, fmt: str | None) -> None:
    """Add fake instances to the [database] cell. Refuses a database Nova manages."""
    from cellctl.ops.dev import add_instances as operation

    progress = progress_for(fmt)
    run(lambda dbs: operation(dbs, count=count, host=host, deleted=deleted, node=node,
                              ironic=ironic, progress=progress, force=force),
        fmt=fmt)
