"""Time ``cellctl map_instances`` on 1,000,000 instances, on SQLite and MariaDB.

For each backend: fresh API and cell databases (created and dropped here),
the instances seeded by ``cellctl dev add-instances``, then the real command
run as a subprocess end to end (start-up included), printing instances/s and
the child's peak RSS. For comparison it then measures the database's own
limit: plain multi-row INSERTs of the same mapping rows into a fresh
``instance_mappings`` on the same server, in batches of the same size, their
SQL text rendered beforehand so only the database's work is timed; once with
each batch in the order read, once sorted by UUID as map_instances writes it.

``--max-count N`` also times mapping the same cell by repeated bounded runs
(``map_instances --max-count N`` until it exits 0): one ordered query per run
with a keyset after the marker, instead of one streaming query.

    .venv/bin/python benchmarks/bench_map_instances.py [--instances 1000000]
        [--backends sqlite,mysql] [--max-count 100000]

Every step that touches data runs in a child process, so this process stays
small: Linux reports a child's peak RSS as at least its parent's RSS at the
moment it was started. MariaDB from CELLCTL_TEST_MYSQL (default
root@127.0.0.1:3306). Not run by .ci/run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

MYSQL_SERVER = os.environ.get("CELLCTL_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
MAPPING_COLUMNS = "instance_uuid, cell_id, project_id, user_id, queued_for_delete, created_at"


class Child:
    """One finished child process: seconds, its own peak RSS (MiB), exit code, output."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        # wait4 gives this child's own rusage; RUSAGE_CHILDREN would mix in others.
        _pid, status, usage = os.wait4(proc.pid, 0)
        self.seconds = time.perf_counter() - start
        self.rss_mib = usage.ru_maxrss / 1024
        self.code = os.waitstatus_to_exitcode(status)
        self.out = proc.stdout.read() if proc.stdout else ""
        self.err = proc.stderr.read() if proc.stderr else ""

    def expect(self, *codes: int) -> Child:
        if self.code not in codes:
            raise SystemExit(f"exit {self.code}: {self.err.strip()[-2000:]}")
        return self


def cellctl(env: dict[str, str], *args: str) -> Child:
    return Child([sys.executable, "-m", "cellctl", *args], env)


class Server:
    """Creates fresh databases on one backend and drops them at the end."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = backend
        self.workdir = workdir
        self.created: list[str] = []

    def new(self, role: str) -> str:
        name = f"cellctl_bench_{role}_{uuid.uuid4().hex[:8]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir / (name + '.sqlite')}"
        self._admin(f"CREATE DATABASE {name}")
        self.created.append(name)
        return f"{MYSQL_SERVER}/{name}"

    def drop(self) -> None:
        for name in self.created:
            self._admin(f"DROP DATABASE IF EXISTS {name}")

    def _admin(self, statement: str) -> None:
        engine = sa.create_engine(MYSQL_SERVER)
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
        engine.dispose()


def bench_backend(backend: str, count: int, max_count: int | None, workdir: Path) -> None:
    server = Server(backend, workdir)
    try:
        cell_url = server.new("cell")
        env = {"CELLCTL_STATE_DIR": str(workdir / "state"), "CELLCTL_DATABASE_CONNECTION": cell_url}
        cellctl(env, "db", "sync").expect(0)
        env, cell_uuid = fresh_api(server, env)

        seeded = cellctl(env, "dev", "add-instances", "--count", str(count),
                         "--host", "compute1").expect(0)
        print(f"{backend}: seeded {count:,} instances in {seeded.seconds:.1f} s "
              f"({count / seeded.seconds:,.0f}/s)", flush=True)

        mapped = cellctl(env, "map_instances", "--cell_uuid", cell_uuid).expect(0)
        check_mapped(env, count)
        print(f"{backend}: map_instances  {count:,} instances in {mapped.seconds:.1f} s = "
              f"{count / mapped.seconds:,.0f} instances/s, peak RSS {mapped.rss_mib:.0f} MiB",
              flush=True)

        if max_count:
            bounded_env, bounded_cell = fresh_api(server, env)
            bounded_runs(bounded_env, bounded_cell, count, max_count, backend)
            check_mapped(bounded_env, count)

        for order in ("read", "uuid"):
            raw_url = server.new("rawapi")
            cellctl({**env, "CELLCTL_API_DATABASE_CONNECTION": raw_url}, "api_db",
                    "sync").expect(0)
            raw = Child([sys.executable, __file__, "--raw-insert", cell_url, raw_url, order],
                        {}).expect(0)
            raw_seconds = float(raw.out)
            print(f"{backend}: raw INSERT, {order + ' order':10} {count:,} rows in "
                  f"{raw_seconds:.1f} s = {count / raw_seconds:,.0f} rows/s in batches of "
                  f"{write_batch():,}; map_instances reaches "
                  f"{raw_seconds / mapped.seconds:.0%} of it", flush=True)
    finally:
        server.drop()


def fresh_api(server: Server, env: dict[str, str]) -> tuple[dict[str, str], str]:
    """A new API database with the cell mapped: (the environment using it, cell UUID)."""
    env = {**env, "CELLCTL_API_DATABASE_CONNECTION": server.new("api")}
    cellctl(env, "api_db", "sync").expect(0)
    created = cellctl(env, "--format", "json", "create_cell", "--name", "bench",
                      "--transport-url", "memory:///").expect(0)
    return env, json.loads(created.out)["uuid"]


def bounded_runs(env: dict[str, str], cell_uuid: str, count: int, max_count: int,
                 backend: str) -> None:
    runs, total, peak = 0, 0.0, 0.0
    code = 1
    while code == 1:
        run = cellctl(env, "map_instances", "--cell_uuid", cell_uuid,
                      "--max-count", str(max_count)).expect(0, 1)
        runs, total, peak, code = runs + 1, total + run.seconds, max(peak, run.rss_mib), run.code
    print(f"{backend}: --max-count {max_count:,}: {runs} runs, {total:.1f} s = "
          f"{count / total:,.0f} instances/s, peak RSS {peak:.0f} MiB", flush=True)


def check_mapped(env: dict[str, str], count: int) -> None:
    engine = sa.create_engine(env["CELLCTL_API_DATABASE_CONNECTION"])
    with engine.connect() as conn:
        mapped = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM instance_mappings WHERE cell_id IS NOT NULL").scalar()
    engine.dispose()
    if mapped != count:
        raise SystemExit(f"expected {count} mappings, found {mapped}")


def write_batch() -> int:
    from cellctl.mappings.cell_instances import WRITE_BATCH

    return WRITE_BATCH


# --- the raw insert measurement, run as a child -------------------------------


def raw_insert_seconds(cell_url: str, raw_url: str, order: str) -> float:
    """Seconds the database spends on plain multi-row INSERTs of the same mapping rows,
    each batch in the order read (Nova's) or sorted by UUID (as map_instances writes)."""
    raw = sa.create_engine(raw_url)
    with raw.begin() as conn:  # a cell for the foreign key
        cell_id = conn.exec_driver_sql(
            "INSERT INTO cell_mappings (uuid, name) VALUES ('raw', 'raw')").lastrowid
    elapsed = 0.0
    with raw.connect() as conn:
        for statement in insert_statements(cell_url, cell_id, by_uuid=order == "uuid"):
            start = time.perf_counter()
            conn.exec_driver_sql(statement)
            conn.commit()
            elapsed += time.perf_counter() - start
    raw.dispose()
    return elapsed


def insert_statements(cell_url: str, cell_id: int, *, by_uuid: bool) -> Iterator[str]:
    """One multi-row INSERT per batch, values written out (fake ids need no quoting)."""
    batch = write_batch()
    cell = sa.create_engine(cell_url)
    with cell.connect() as conn:
        rows = conn.execution_options(yield_per=batch).exec_driver_sql(
            "SELECT uuid, project_id, user_id FROM instances ORDER BY created_at, id")
        for part in rows.partitions(batch):
            ordered = sorted(part, key=lambda r: r.uuid) if by_uuid else part
            values = ",".join(f"('{r.uuid}', {cell_id}, '{r.project_id}', '{r.user_id}', 0, "
                              "'2026-01-01 00:00:00')" for r in ordered)
            yield f"INSERT INTO instance_mappings ({MAPPING_COLUMNS}) VALUES {values}"
    cell.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,mysql")
    parser.add_argument("--max-count", type=int, default=None,
                        help="also time repeated bounded runs of this size")
    parser.add_argument("--raw-insert", nargs=3, metavar=("CELL_URL", "API_URL", "ORDER"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_insert:
        print(raw_insert_seconds(*args.raw_insert))
        return
    with tempfile.TemporaryDirectory(prefix="cellctl-bench-") as tmp:
        for backend in args.backends.split(","):
            bench_backend(backend, args.instances, args.max_count, Path(tmp))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this script's own peak RSS, a floor for every child's: {own:.0f} MiB)")


if __name__ == "__main__":
    main()
