"""``cellctl ironic``: bare-metal nodes and the nova-compute services that manage them.

cellctl's own commands (nova-manage has none): not registered under ``cell_v2``.
"""

from __future__ import annotations

import click

from cellctl.cli import Group, format_option, main, run
from cellctl.cli.cellopt import cell_option, chosen_cell


@main.group("ironic", cls=Group)
def ironic() -> None:
    """Ironic nodes: which nova-compute service owns which, and what moves."""


@ironic.command("ring")
@click.option("--cell_uuid", "--cell-uuid", "cell_uuid", metavar="UUID",
              help="Only this cell's nodes.")
@cell_option
@click.option("--host", metavar="HOST", help="Only nodes this host reports or owns.")
@click.option("--state", metavar="STATE",
              help="Only nodes in this state: in place, moving, orphaned, duplicated, unknown.")
@click.option("--summary", is_flag=True,
              help="One row per service: its state and the nodes it reports and owns.")
@click.option("--without", "without", multiple=True, metavar="HOST",
              help="What if this service went down (repeatable): adds Owner After.")
@click.option("--with", "joining", multiple=True, metavar="HOST",
              help="What if this service joined (repeatable): adds Owner After.")
@click.option("--all", "show_all", is_flag=True,
              help="With --without/--with: every node, not only those that would move.")
@format_option
def ring(cell_uuid: str | None, cell: str | None, host: str | None, state: str | None,
         summary: bool, without: tuple[str, ...], joining: tuple[str, ...], show_all: bool,
         fmt: str | None) -> None:
    """Every Ironic node: who reports it, who owns it by Nova's hash ring, its state.

    A node with an instance belongs to the instance's host; the others to the
    ring over the cell's live, enabled Ironic compute services. States: in
    place, moving (a live non-owner reports it), orphaned (every reporter is
    down), duplicated (two or more report it), unknown (the service group
    backend cannot be reached). Exit 0; 1 bad input; 9 --cell names several cells.
    """
    from cellctl.ops.ironic_ring import ironic_ring

    chosen = chosen_cell(cell_uuid, cell, required=False)
    run(lambda dbs: ironic_ring(dbs, cell_uuid=chosen, host=host, state=state,
                                summary=summary, without=without, joining=joining,
                                show_all=show_all), fmt=fmt)
