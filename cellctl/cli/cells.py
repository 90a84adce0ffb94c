"""Cell mapping commands: map_cell0, create_cell, list_cells, update_cell, delete_cell."""

from __future__ import annotations

import click

from cellctl.cli import Command, dry_run_option, format_option, register, run, unless_dry_run
from cellctl.cli.cellopt import CELL_UUID_FLAGS, DATABASE_URL_FLAGS, cell_option, chosen_cell


@register
@click.command("map_cell0", cls=Command, writes=True)
@click.option(*DATABASE_URL_FLAGS, "database_connection", metavar="URL",
              help="cell0's database (default: [database] connection with _cell0 added).")
@format_option
def map_cell0(database_connection: str | None, fmt: str | None) -> None:
    """Map cell0, where instances that were never scheduled live."""
    from cellctl.ops import cells

    run(lambda dbs: cells.map_cell0(dbs, database_connection=database_connection), fmt=fmt)


@register
@click.command("create_cell", cls=Command, writes=True)
@click.option("--name", help="A name for the cell.")
@click.option("--transport-url", metavar="URL", help="The cell's message queue.")
@click.option(*DATABASE_URL_FLAGS, "database_connection", metavar="URL",
              help="The cell's database.")
@click.option("--verbose", is_flag=True, help="Print the new cell's UUID.")
@click.option("--disabled", is_flag=True, help="Create the cell disabled for scheduling.")
@format_option
def create_cell(name: str | None, transport_url: str | None, database_connection: str | None,
                verbose: bool, disabled: bool, fmt: str | None) -> None:
    """Map a new cell. Exit 0 created, 1 URL missing or invalid, 2 URL used by another cell."""
    from cellctl.ops import cells

    run(lambda dbs: cells.create_cell(
        dbs, name=name, transport_url=transport_url, database_connection=database_connection,
        disabled=disabled, verbose=verbose,
    ), fmt=fmt)


@register
@click.command("list_cells", cls=Command, writes=False)
@click.option("--verbose", is_flag=True, help="Show passwords in URLs.")
@format_option
def list_cells(verbose: bool, fmt: str | None) -> None:
    """List cells sorted by name; passwords are masked unless --verbose."""
    from cellctl.ops import cells

    run(cells.list_cells, fmt=fmt, show_secrets=verbose)


@register
@click.command("update_cell", cls=Command, writes=True)
@click.option(*CELL_UUID_FLAGS, "cell_uuid", metavar="UUID", help="The cell (required, or --cell).")
@cell_option
@click.option("--name", help="New name.")
@click.option("--transport-url", metavar="URL", help="New message queue URL.")
@click.option(*DATABASE_URL_FLAGS, "database_connection", metavar="URL", help="New database URL.")
@click.option("--disable", is_flag=True, help="Stop scheduling to this cell.")
@click.option("--enable", is_flag=True, help="Resume scheduling to this cell.")
@format_option
def update_cell(cell_uuid: str | None, cell: str | None, name: str | None,
                transport_url: str | None, database_connection: str | None, disable: bool,
                enable: bool, fmt: str | None) -> None:
    """Change a cell; only what is named changes.

    Exit 0 ok, 1 not found, 2 invalid URL or not saved, 3 URL used by another
    cell, 4 both --disable and --enable, 5 enable/disable of cell0, 9 --cell names
    several cells.
    """
    from cellctl.ops import cells

    chosen = chosen_cell(cell_uuid, cell, required=True)
    assert chosen is not None
    run(lambda dbs: cells.update_cell(
        dbs, cell_uuid=chosen, name=name, transport_url=transport_url,
        database_connection=database_connection, disable=disable, enable=enable,
    ), failure_code=2, fmt=fmt)


@register
@click.command("delete_cell", cls=Command,
               writes=unless_dry_run)
@click.option(*CELL_UUID_FLAGS, "cell_uuid", metavar="UUID", help="The cell (required, or --cell).")
@cell_option
@click.option("--force", is_flag=True,
              help="Also delete the cell's host mappings and deleted instances' mappings.")
@dry_run_option
@format_option
def delete_cell(cell_uuid: str | None, cell: str | None, force: bool, dry_run: bool,
                fmt: str | None) -> None:
    """Delete a cell.

    Exit 0 deleted, 1 not found, 2 has hosts (no --force), 3 has living
    instances, 4 has instance mappings of deleted instances (no --force), 9 --cell
    names several cells. With --format json a refusal lists its reasons.
    """
    from cellctl.ops import cells

    chosen = chosen_cell(cell_uuid, cell, required=True)
    assert chosen is not None
    run(lambda dbs: cells.delete_cell(dbs, cell_uuid=chosen, force=force, dry_run=dry_run),
        failure_code=255, fmt=fmt)
