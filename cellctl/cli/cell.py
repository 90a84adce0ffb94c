"""``cellctl cell ensure`` and ``cellctl cell check``: cellctl's own cell commands.

Not registered under ``cell_v2``: nova-manage has no such commands.
"""

from __future__ import annotations

import click

from cellctl.cli import Group, format_option, main, run
from cellctl.cli.cellopt import DATABASE_URL_FLAGS


@main.group("cell", cls=Group)
def cell() -> None:
    """Cells, declaratively: ensure one exists as described; check them all."""


@cell.command("ensure", writes=True)
@click.option("--name", required=True, help="The cell's name (cell0: cell0 itself).")
@click.option("--transport-url", "--transport_url", "transport_url", metavar="URL",
              help="Its message queue (a Nova template is stored as written).")
@click.option(*DATABASE_URL_FLAGS, "database_connection",
              metavar="URL", help="Its database (a Nova template is stored as written).")
@click.option("--disabled/--enabled", "disabled", default=None,
              help="Scheduling to the cell off or on (default: as it is; new cells enabled).")
@click.option("--from-config", "from_config", is_flag=True,
              help="Take the URLs not given from the configuration ([DEFAULT] "
                   "transport_url, [database] connection; for cell0 [database] connection "
                   "with _cell0 added).")
@format_option
def ensure(name: str, transport_url: str | None, database_connection: str | None,
           disabled: bool | None, from_config: bool, fmt: str | None) -> None:
    """Create the cell NAME, or change exactly the fields given that differ, or do nothing.

    Exit 0 unchanged, 10 created, 11 updated, 1 bad input (invalid URL, URL
    missing to create the cell, cell0 disabled or given a queue), 3 another
    cell already uses that database or queue (compared after template
    expansion), 9 two cells already have that name, 255 a database could not be
    used. --format json prints {"outcome", "name", "uuid", "changed", ...}.
    """
    from cellctl.ops.cell_ensure import ensure_cell

    run(lambda dbs: ensure_cell(dbs, name=name, transport_url=transport_url,
                                database_connection=database_connection, disabled=disabled,
                                from_config=from_config), failure_code=255, fmt=fmt)


@cell.command("check", writes=False)
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to wait for each database and queue to answer.")
@click.option("--no-connectivity", "no_connectivity", is_flag=True,
              help="Do not connect to the cells' databases and queues.")
@format_option
def check(timeout: float, no_connectivity: bool, fmt: str | None) -> None:
    """Check every cell: stored URLs against this host's configuration, reachability,
    cell0, two cells on one database or queue.

    Exit 0 all well, 1 a warning (e.g. a stale URL), 2 a failure (unreachable,
    shared database or queue, cell0 missing or wrong), like status.
    """
    from cellctl.ops.cell_check import check_cells

    run(lambda dbs: check_cells(dbs, timeout=timeout, connectivity=not no_connectivity),
        failure_code=2, fmt=fmt)
