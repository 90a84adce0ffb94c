"""``simple_cell_setup``: cell0, one cell with its hosts, and its instances, in one command."""

from __future__ import annotations

import click

from cellctl.cli import Command, format_option, progress_for, register, run


@register
@click.command("simple_cell_setup", cls=Command, writes=True)
@click.option("--transport-url", metavar="URL", help="The cell's message queue.")
@format_option
def simple_cell_setup(transport_url: str | None, fmt: str | None) -> None:
    """Map cell0 and sync its schema, map [database] as a cell with its hosts, map its
    instances.

    Exit 0 done (or already done), 1 no compute hosts, or transport URL
    missing or invalid, 255 a database could not be used.
    """
    from cellctl.ops.setup import simple_cell_setup as operation

    progress = progress_for(fmt)
    run(lambda dbs: operation(dbs, transport_url=transport_url, progress=progress),
        failure_code=255, fmt=fmt)
