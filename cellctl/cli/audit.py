"""``cellctl audit``: inconsistencies between the API database and the cells (cellctl's own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cellctl.cli import Command, format_option, main, run
from cellctl.cli.arguments import checked, not_negative, number, positive

if TYPE_CHECKING:
    from cellctl.db import Databases
    from cellctl.result import Result
from cellctl.cli.cellopt import cell_option, chosen_cell


@main.command("audit", cls=Command, writes=lambda params: bool(params.get("fix")))
@click.option("--cell_uuid", "--cell-uuid", "cell_uuid", metavar="UUID",
              help="Report only this cell's findings (every cell is still read).")
@cell_option
@click.option("--fix", is_flag=True, help="Repair the fixable findings.")
@click.option("--kind", "kinds", multiple=True, metavar="KIND",
              help="Only this kind of finding; repeatable (default: every kind).")
@click.option("--limit", metavar="N", help="List at most N findings per kind (default 1000; "
              "the counts are always complete).")
@click.option("--build-timeout", "--build_timeout", "build_timeout", metavar="S",
              help="Seconds an instance mapping may stay without a cell while its instance "
              "builds (default 3600).")
@format_option
def audit(cell_uuid: str | None, cell: str | None, fix: bool, kinds: tuple[str, ...],
          limit: str | None, build_timeout: str | None, fmt: str | None) -> None:
    """Find every inconsistency between the API database and the cells, by kind.

    Kinds: instance_without_mapping, mapping_without_instance,
    mapping_in_wrong_cell, mapping_without_cell, host_mapping_without_host,
    node_mapped_without_host_mapping, host_in_several_cells, leftover_marker.
    Without --fix nothing is written. Exit 0 nothing found, 1 findings remain
    (or bad input), 2 a cell could not be read (the others are still audited),
    9 --cell names several cells.
    """
    from cellctl.ops.audit import audit as operation

    chosen = chosen_cell(cell_uuid, cell, required=False)

    def run_audit(dbs: Databases) -> Result:
        cap, patience = checked(
            lambda: number(limit, int, valid=positive,
                           message="--limit must be a positive integer, not {value}"),
            lambda: number(build_timeout, float, valid=not_negative,
                           message="--build-timeout must be a number of seconds (0 or more), "
                                   "not {value}"))
        return operation(dbs, cell_uuid=chosen, fix=fix, kinds=kinds, limit=cap,
                         build_timeout=patience)

    run(run_audit, failure_code=1, fmt=fmt)
