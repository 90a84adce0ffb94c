"""Instance mapping commands: map_instances, verify_instance."""

from __future__ import annotations

import click

from cellctl.cli import Command, format_option, progress_for, register, run
from cellctl.cli.arguments import number, positive
from cellctl.cli.cellopt import CELL_UUID_FLAGS, cell_option, chosen_cell


@register
@click.command("map_instances", cls=Command, writes=True)
@click.option(*CELL_UUID_FLAGS, "cell_uuid", metavar="UUID",
              help="The cell whose instances to map (required, or --cell).")
@cell_option
@click.option("--max-count", "--max_count", "max_count", metavar="N",
              help="Map at most N instances this run (default: all of them).")
@click.option("--reset", is_flag=True, help="Start from the oldest instance, not the marker.")
@format_option
def map_instances(cell_uuid: str | None, cell: str | None, max_count: str | None, reset: bool,
                  fmt: str | None) -> None:
    """Map the cell's instances (deleted ones too), oldest first; resumable.

    Exit 0 all mapped, 1 more remain (run again), 127 bad --max-count, 255 an
    unknown or malformed cell (as nova-manage) or an unexpected error, 9 --cell
    names several cells.
    """
    from cellctl.ops.map_instances import map_instances as operation

    chosen = chosen_cell(cell_uuid, cell, required=True)
    assert chosen is not None
    progress = progress_for(fmt)
    run(lambda dbs: operation(
        dbs, cell_uuid=chosen, reset=reset, progress=progress,
        max_count=number(max_count, int, valid=positive, code=127,
                         message="Must supply a positive value for max-count"),
    ), failure_code=255, fmt=fmt)


@register
@click.command("verify_instance", cls=Command, writes=False)
@click.option("--uuid", "instance_uuid", required=True, metavar="UUID",
              help="The instance to look up.")
@click.option("--quiet", is_flag=True, help="No output, only the exit code.")
@format_option
def verify_instance(instance_uuid: str, quiet: bool, fmt: str | None) -> None:
    """Say which cell an instance lives in.

    Exit 0 mapped, 1 not mapped, 2 mapping has no cell, 3 deleted instance
    still mapped, 4 archived instance still mapped.
    """
    from cellctl.ops.verify_instance import verify_instance as operation

    run(lambda dbs: operation(dbs, instance_uuid=instance_uuid, quiet=quiet),
        failure_code=255, fmt=fmt)
