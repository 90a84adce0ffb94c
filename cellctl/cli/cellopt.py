"""``--cell NAME_OR_UUID``: cellctl's way to name a cell, beside nova-manage's ``--cell_uuid``.

A command that takes ``--cell_uuid`` also takes ``--cell``; the value handed
to the operation is then a ``CellName``, which the shared look-ups resolve by
UUID, else by exact name (``cellctl.cells.refs.resolve_cell_uuid``). An unknown
name is the command's "not found" code, a name two cells share exit 9
(AMBIGUOUS_CELL) naming their UUIDs. ``--cell`` was a prefix of ``--cell_uuid``
before; a UUID given to it still means that UUID.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

# nova-manage's spellings, each with cellctl's dashed one: the flags of every command.
CELL_UUID_FLAGS = ("--cell_uuid", "--cell-uuid")
DATABASE_URL_FLAGS = ("--database_connection", "--database-connection")

CELL_HELP = ("The cell, by UUID or by name (exit 9 when several cells have that name); "
             "instead of --cell_uuid.")


def cell_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--cell NAME_OR_UUID`` (parameter ``cell``) to a command."""
    return click.option("--cell", "cell", metavar="NAME_OR_UUID", help=CELL_HELP)(func)


def chosen_cell(cell_uuid: str | None, cell: str | None, *, required: bool) -> str | None:
    """The cell the user named: ``--cell_uuid`` as a plain UUID, ``--cell`` as a CellName.

    Both at once is a usage error; neither, when ``required``, is click's own
    "Missing option '--cell_uuid'" (the error nova-manage's argparse gives too).
    """
    from cellctl.cells.refs import CellName

    if cell_uuid is not None and cell is not None:
        raise click.UsageError("Give --cell_uuid or --cell, not both.")
    if cell is not None:
        return CellName(cell)
    if cell_uuid is None and required:
        ctx = click.get_current_context()
        param = next(p for p in ctx.command.params if p.name == "cell_uuid")
        raise click.MissingParameter(ctx=ctx, param=param)
    return cell_uuid
