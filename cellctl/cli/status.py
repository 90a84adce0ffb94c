"""``status``: the cells v2 upgrade checks, and real connectivity checks of every cell."""

from __future__ import annotations

import click

from cellctl.cells.probes import DEFAULT_TIMEOUT  # light: no SQLAlchemy or kombu at import
from cellctl.cli import Command, format_option, progress_for, register, run


@register
@click.command("status", cls=Command, writes=False)
@click.option("--check-connectivity", is_flag=True,
              help="Also open a real connection to every cell's database and queue.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT,
              show_default=True, metavar="SECONDS",
              help="How long to wait for each cell's database (and queue) to answer.")
@format_option
def status(check_connectivity: bool, timeout: float, fmt: str | None) -> None:
    """Check that the cells layout is sound. Exit 0 all pass, 1 warnings, 2 failures."""
    from cellctl.ops.status import status as check_status

    run(lambda dbs: check_status(dbs, check_connectivity=check_connectivity, timeout=timeout,
                                 progress=progress_for(fmt)), failure_code=2, fmt=fmt)
