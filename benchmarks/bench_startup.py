"""Time ``cellctl list_cells`` start to finish against its floor, ``import sqlalchemy, pymysql``.

A command that reads nova.conf and answers from one small table is mostly
start-up. The floor is the least any Python implementation with the same
driver must do: start the interpreter and import SQLAlchemy and PyMySQL. This
script writes a nova.conf naming a fresh MariaDB API database (created,
synced, given two cells, dropped at the end), then alternates ``--runs``
runs of each of: the floor, ``cellctl --config-file nova.conf list_cells``,
``cellctl --help`` and ``cellctl --version``, and also a script that does
what any answer from the table needs beyond the imports (an engine, a
connection, the SELECT); it prints each one's median
wall time and CPU time (user + system) and their distance from the floor's
(medians of alternated runs: a loaded machine slows all of them alike; the
CPU time is the steadier figure when the machine is shared).

    .venv/bin/python benchmarks/bench_startup.py [--runs 21] [--compare SOURCE_DIR]

Profile the difference with
``python -X importtime -m cellctl --config-file nova.conf list_cells``.
MariaDB from CELLCTL_TEST_MYSQL (default root@127.0.0.1:3306). Not run by .ci/run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from measure import Child, Server, cellctl

FLOOR = [sys.executable, "-c", "import sqlalchemy, pymysql"]
# The floor plus what any answer from the table costs with this driver: an engine,
# a connection and the query. With PyMySQL's defaults, as here, every connection
# builds a TLS context (about 20 ms of CPU, idle), even for a server that offers no
# TLS; cellctl builds it only when the server offers TLS (cellctl/pymysql_tls.py).
QUERY = ("import sys, sqlalchemy, pymysql\n"
         "engine = sqlalchemy.create_engine(sys.argv[1])\n"
         "with engine.connect() as conn:\n"
         "    print(conn.exec_driver_sql('SELECT * FROM cell_mappings').all())\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--compare", metavar="SOURCE_DIR",
                        help="also time list_cells from another checkout's source (e.g. "
                             "`git archive main | tar -x -C DIR`), alternated with the rest")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cellctl-bench-") as tmp:
        workdir = Path(tmp)
        server = Server("mysql", workdir)
        try:
            api = server.new("api")
            conf = workdir / "nova.conf"
            conf.write_text(f"[api_database]\nconnection = {api}\n"
                            f"[database]\nconnection = {server.new('cell')}\n"
                            "[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:5672/\n")
            # Bytecode written and used, as an installed package has it (a
            # PYTHONDONTWRITEBYTECODE environment would compile every module each run).
            env = {"CELLCTL_STATE_DIR": str(workdir / "state"), "PYTHONDONTWRITEBYTECODE": ""}
            config = ["--config-file", str(conf)]
            cellctl(env, *config, "api_db", "sync").expect(0)
            cellctl(env, *config, "create_cell", "--name", "one").expect(0)
            cellctl(env, *config, "create_cell", "--name", "two", "--database_connection",
                    server.new("cell"), "--transport-url",
                    "rabbit://guest:guest@127.0.0.1:5672/two").expect(0)
            commands = {
                "import sqlalchemy, pymysql (floor)": lambda: Child(FLOOR, env),
                "connect + SELECT (SQLAlchemy, PyMySQL)": lambda: Child(
                    [sys.executable, "-c", QUERY, api], env),
                "cellctl list_cells": lambda: cellctl(env, *config, "list_cells"),
                **({f"list_cells from {args.compare}": lambda: Child(
                    [sys.executable, "-c", f"import sys; sys.path.insert(0, {args.compare!r}); "
                     "from cellctl.console import main; main()", *config, "list_cells"], env)}
                   if args.compare else {}),
                "cellctl --help": lambda: cellctl(env, "--help"),
                "cellctl --version": lambda: cellctl(env, "--version"),
            }
            for command in commands.values():  # writes the bytecode
                command().expect(0)
            runs: dict[str, list[Child]] = {name: [] for name in commands}
            for _ in range(args.runs):  # alternated, so all see the same load
                for name, command in commands.items():
                    runs[name].append(command().expect(0))
        finally:
            server.drop()
    print(f"medians of {args.runs} alternated runs; + is the distance from the floor's")
    floor = {"wall": median(runs, "seconds"), "CPU": median(runs, "cpu")}
    for name, children in runs.items():
        wall, cpu = (statistics.median(getattr(c, what) for c in children)
                     for what in ("seconds", "cpu"))
        print(f"{name[:38]:38} wall {wall * 1000:5.0f} ms (+{(wall - floor['wall']) * 1000:4.0f}), "
              f"CPU {cpu * 1000:5.0f} ms (+{(cpu - floor['CPU']) * 1000:4.0f}), "
              f"peak RSS {max(c.rss_mib for c in children):3.0f} MiB")


def median(runs: dict[str, list[Child]], what: str) -> float:
    """The floor's median ``what`` (it is the first command)."""
    return statistics.median(getattr(child, what) for child in next(iter(runs.values())))


if __name__ == "__main__":
    main()
