"""The service group: ``service register``, ``service heartbeat``, ``service list``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cellctl.cli import Group, format_option, register, run, test_data_force_option
from cellctl.cli.arguments import checked, number, positive
from cellctl.cli.cellopt import CELL_UUID_FLAGS, DATABASE_URL_FLAGS, cell_option, chosen_cell

if TYPE_CHECKING:
    from cellctl.db import Databases
    from cellctl.result import Result

_DB_HELP = "The cell database to write to (default: [database] connection)."


@click.group("service", cls=Group)
def service() -> None:
    """Compute services join a cell and report that they are alive."""


register(service)


@service.command("register", writes=True)
@click.option("--host", required=True, help="The service's host.")
@click.option("--binary", default="nova-compute", show_default=True)
@click.option("--no-compute-node", "no_compute_node", is_flag=True,
              help="Do not add a compute node for a nova-compute service.")
@click.option("--hypervisor-type", "hypervisor_type", default="fake", show_default=True,
              help="The compute nodes' hypervisor_type; 'ironic': bare-metal nodes, "
                   "see --nodes and --node.")
@click.option("--nodes", type=int, metavar="N",
              help="With ironic: the host reports at least N Ironic nodes (new UUIDs).")
@click.option("--node", "node_uuids", multiple=True, metavar="UUID",
              help="With ironic: the host also reports this node (repeatable; a node "
                   "another host reports too is duplicated).")
@click.option(*DATABASE_URL_FLAGS, "database_connection", metavar="URL", help=_DB_HELP)
@test_data_force_option
@format_option
def service_register(host: str, binary: str, no_compute_node: bool, hypervisor_type: str,
                     nodes: int | None, node_uuids: tuple[str, ...],
                     database_connection: str | None, force: bool, fmt: str | None) -> None:
    """Add a service (and its compute node) to the cell, as a starting service does.

    Registering again changes nothing. Exit 0 ok, 1 bad input.
    """
    from cellctl.ops import services

    run(lambda dbs: services.register_service(
        dbs, host=host, binary=binary, compute_node=not no_compute_node,
        hypervisor_type=hypervisor_type, nodes=nodes, node_uuids=node_uuids,
        database_connection=database_connection, force=force,
    ), fmt=fmt)


@service.command("heartbeat", writes=True)
@click.option("--host", required=True, help="The service's host.")
@click.option("--binary", default="nova-compute", show_default=True)
@click.option("--interval", default="10", show_default=True, metavar="SECONDS",
              help="Seconds between reports.")
@click.option("--count", metavar="N", help="Stop after N reports (default: until stopped).")
@click.option(*DATABASE_URL_FLAGS, "database_connection", metavar="URL", help=_DB_HELP)
@test_data_force_option
@format_option
def service_heartbeat(host: str, binary: str, interval: str, count: str | None,
                      database_connection: str | None, force: bool, fmt: str | None) -> None:
    """Report "I'm OK" every --interval seconds until stopped.

    Exit 0 ok (--count reports made), 1 bad input or no such service; stopped by
    SIGINT 130, SIGTERM 143, as every command (a beat under way is rolled back).
    """
    from cellctl.ops import services

    def beat(dbs: Databases) -> Result:
        seconds, beats = checked(
            lambda: number(interval, float, valid=positive,
                           message="--interval must be a positive number, got {value}"),
            lambda: number(count, int, valid=positive,
                           message="--count must be a positive number, got {value}"))
        return services.heartbeat(dbs, host=host, binary=binary, interval=seconds, count=beats,
                                  database_connection=database_connection, force=force)

    run(beat, fmt=fmt)


@service.command("list", writes=False)
@click.option(*CELL_UUID_FLAGS, "cell_uuid", metavar="UUID", help="Only this cell's services.")
@cell_option
@format_option
def service_list(cell_uuid: str | None, cell: str | None, fmt: str | None) -> None:
    """Every service of every cell, up or down. Exit 0, 1 bad input, 9 --cell names
    several cells."""
    from cellctl.ops import services

    chosen = chosen_cell(cell_uuid, cell, required=False)
    run(lambda dbs: services.list_services(dbs, cell_uuid=chosen), fmt=fmt)

