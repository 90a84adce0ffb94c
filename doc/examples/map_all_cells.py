"""Map every instance of every cell, and say how far it got: cellctl from Python.

Run it as an upgrade step, with the nova.conf the deployment already has::

    python3 map_all_cells.py /etc/nova/nova.conf

or with no argument, on cellctl's embedded defaults (SQLite files in
``$CELLCTL_STATE_DIR``). It exits 0 when every cell is done, 1 when a cell
could not be mapped (each such cell is named on stderr).
"""

from __future__ import annotations

import sys
from typing import TextIO

import cellctl


class LineProgress:
    """A ``cellctl.Progress`` that writes a line every ``step`` instances.

    ``map_instances`` calls ``start`` once (``total`` is how many instances
    this run will look at), ``advance`` after every committed batch, and
    ``finish`` at the end, whether the run succeeded or not.
    """

    def __init__(self, out: TextIO = sys.stderr, step: int = 20_000) -> None:
        self.out, self.step = out, step
        self.label = ""
        self.total: int | None = None
        self.done = self.shown = 0

    def start(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done, self.shown = label, total, 0, 0
        print(f"{self.label}: {self.total} to look at", file=self.out)

    def advance(self, count: int) -> None:
        self.done += count
        if self.done - self.shown >= self.step:
            self.shown = self.done
            print(f"{self.label}: {self.done}/{self.total}", file=self.out)

    def finish(self) -> None:
        print(f"{self.label}: done, {self.done} looked at", file=self.out)


def map_all_cells(settings: cellctl.Settings, progress: cellctl.Progress) -> int:
    """``map_instances`` on every mapped cell (cell0 too); 0 if all are done, else 1."""
    failed = 0
    with cellctl.Databases(settings) as dbs:
        cells = cellctl.list_cells(dbs)
        assert cells.table is not None  # a listing always has its table
        for cell in cells.table.rows:
            name = cell["name"] or cell["uuid"]
            print(f"Cell {name}:", file=sys.stderr)
            try:
                result = cellctl.map_instances(dbs, cell_uuid=cell["uuid"], progress=progress)
            except cellctl.CellctlError as exc:  # this cell's database cannot be used
                failed += 1
                print(f"  not mapped: {exc}", file=sys.stderr)
                continue
            for message in result.messages:  # warnings and errors, already masked
                print(f"  {message.level}: {message.text}", file=sys.stderr)
            if result.code != 0 or result.data is None:
                failed += 1
                print(f"  not mapped (exit code {result.code})", file=sys.stderr)
                continue
            print(f"  {result.data['mapped']} mapped, "
                  f"{result.data['already_mapped']} were already", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    try:
        # The same settings the command line would use: these files (nova.conf
        # works as is), else the environment, else the embedded defaults.
        settings = cellctl.resolve(config_files=argv)
        return map_all_cells(settings, LineProgress())
    except cellctl.CellctlError as exc:  # bad settings, a database that cannot be used
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
