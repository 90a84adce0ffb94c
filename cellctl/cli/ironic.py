"""``cellctl ironic``: bare-metal nodes and the nova-compute services that manage them.

cellctl's own commands (nova-manage has none): not registered under ``cell_v2``.
"""

from __future__ import annotations

import click

from cellctl.cli import Group, format_option, main, run
from cellctl.cli.cellopt import CELL_UUID_FLAGS, cell_option, chosen_cell


@main.group("ironic", cls=Group)
def ironic() -> None:
    """Ironic nodes: which nova-compute service owns which, and what moves."""


@ironic.command("ring", writes=False)
@click.option(*CELL_UUID_FLAGS, "cell_uuid", metavar="UUID",
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


@ironic.command("move", writes=lambda params: bool(params.get("apply")))
@click.option("--from", "source", metavar="HOST",
              help="The nova-compute service whose nodes move (it must be forced down).")
@click.option("--to", "destination", metavar="HOST", help="The service that takes them.")
@click.option("--rebalance", is_flag=True,
              help="Give each node to its owner on the hash ring without the source.")
@click.option("--node", "nodes", multiple=True, metavar="UUID",
              help="Only this Ironic node (repeatable); default: every node of the source.")
@click.option("--cell", metavar="NAME_OR_UUID", help="Only this cell's nodes.")
@click.option("--apply", is_flag=True, help="Write the plan; without it nothing is written.")
@format_option
def move(source: str | None, destination: str | None, rebalance: bool,
         nodes: tuple[str, ...], cell: str | None, apply: bool, fmt: str | None) -> None:
    """Move Ironic nodes from one nova-compute service to another (a plan, unless --apply).

    nova-manage db ironic_compute_node_move's rules, per node: the source is
    forced down, the destination exists in the node's cell, is up and not
    forced down, the node has at most one instance (whose host moves with it).
    Each node in its own transaction; a re-run finishes what a killed one left.
    Exit 0 plan OK or moved; 1 bad input; 2 a node refused; 3 nothing to move;
    4 a cell could not be read or written.
    """
    from cellctl.ops.ironic_move import ironic_move

    run(lambda dbs: ironic_move(dbs, source=source, destination=destination,
                                rebalance=rebalance, nodes=nodes, cell=cell, apply=apply),
        fmt=fmt)


@ironic.command("owners", writes=False)
@click.option("--service-config", "service_configs", multiple=True, metavar="HOST=FILE",
              help="A compute service's own rendered nova.conf (repeatable).")
@click.option("--service-config-dir", metavar="DIR",
              help="One nova.conf per compute service, named HOST or HOST.conf.")
@click.option(*CELL_UUID_FLAGS, "cell_uuid", metavar="UUID",
              help="Only this cell's services.")
@click.option("--problems", "problems_only", is_flag=True,
              help="Only the nodes with a flag (something to act on).")
@click.option("--services", is_flag=True,
              help="One row per configured service: settings, nodes listed and managed, "
                   "contradictions.")
@format_option
def owners(service_configs: tuple[str, ...], service_config_dir: str | None,
           cell_uuid: str | None, problems_only: bool, services: bool,
           fmt: str | None) -> None:
    """Every Ironic node and the services that will manage it, as Nova 34 decides.

    Nodes come from Ironic's API (the [ironic] group of the configuration);
    each compute service's view is computed from its own nova.conf (shard,
    conductor group and peer_list, or the plain ring; every service counts
    itself in). Flags: unmanaged, double-managed, moving, instance host down,
    unserved, unknown. Exit 0; 1 bad input.
    """
    from cellctl.ops.ironic_owners import ironic_owners

    run(lambda dbs: ironic_owners(dbs, service_configs=service_configs,
                                  service_config_dir=service_config_dir, cell_uuid=cell_uuid,
                                  problems_only=problems_only, services=services), fmt=fmt)
