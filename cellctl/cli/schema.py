"""Schema commands: api_db sync|version, db sync|version."""

from __future__ import annotations

import click

from cellctl.cli import Group, format_option, main, run


@main.group("api_db", cls=Group)
def api_db() -> None:
    """The API database schema."""


@main.group("db", cls=Group)
def db() -> None:
    """The cell database schema ([database], cell0, and mapped cells)."""


@api_db.command("sync")
@click.argument("version", required=False)
@format_option
def api_db_sync(version: str | None, fmt: str | None) -> None:
    """Create or upgrade the API schema (to VERSION, default head). Exit 0 ok, 1 failed."""
    from cellctl.ops import schema

    run(lambda dbs: schema.api_db_sync(dbs, version), fmt=fmt)


@api_db.command("version")
@format_option
def api_db_version(fmt: str | None) -> None:
    """Print the API schema revision."""
    from cellctl.ops import schema

    run(schema.api_db_version, fmt=fmt)


@db.command("sync")
@click.argument("version", required=False)
@click.option("--all-cells", is_flag=True, help="Also every mapped cell's database.")
@click.option("--local_cell", "--local-cell", "local_cell", is_flag=True,
              help="Only [database]: not cell0 (as nova-manage's --local_cell).")
@format_option
def db_sync(version: str | None, all_cells: bool, local_cell: bool, fmt: str | None) -> None:
    """Create or upgrade the cell schema of [database] and cell0. Exit 0 ok, 1 failed."""
    from cellctl.ops import schema

    run(lambda dbs: schema.db_sync(dbs, version, all_cells=all_cells, local_cell=local_cell),
        fmt=fmt)


@db.command("version")
@format_option
def db_version(fmt: str | None) -> None:
    """Print the cell schema revision of [database]."""
    from cellctl.ops import schema

    run(schema.db_version, fmt=fmt)
