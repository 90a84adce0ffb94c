"""Time ``cellctl map_instances`` on 1,000,000 instances, on SQLite and MariaDB.

For each backend: fresh API and cell databases (created and dropped here),
the instances seeded with bulk inserts, then the real command run as a
subprocess end to end (start-up included), printing instances/s and the
child's peak RSS. For comparison it then measures the database's own limit:
plain multi-row INSERTs of the same mapping rows into a fresh
``instance_mappings`` on the same server, in batches of the same size, their
SQL text rendered beforehand so only the database's work is timed.

``--max-count N`` also times mapping the same cell by repeated bounded runs
(``map_instances --max-count N`` until it exits 0): one ordered query per run
with a keyset after the marker, instead of one streaming query.

    .venv/bin/python benchmarks/bench_map_instances.py [--instances 1000000]
        [--backends sqlite,mysql] [--max-count 100000]

MariaDB from CELLCTL_TEST_MYSQL (default root@127.0.0.1:3306). Not run by .ci/run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from cellctl import migrate
from cellctl.db import create_engine
from cellctl.ops.dev import insert_fake_instances
from cellctl.ops.map_instances import WRITE_BATCH
from cellctl.tables.api import cell_mappings
from cellctl.tables.cell import instances

MYSQL_SERVER = os.environ.get("CELLCTL_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
MAPPING_COLUMNS = "instance_uuid, cell_id, project_id, user_id, queued_for_delete, created_at"


def cellctl(env: dict[str, str], *args: str) -> tuple[float, float, int, str]:
    """Run cellctl: (seconds, peak RSS in MiB of that very process, exit code, stderr)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cellctl", *args], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # wait4 gives this child's own rusage; RUSAGE_CHILDREN would mix in others.
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    err = proc.stderr.read() if proc.stderr else ""
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), err


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


def synced(url: str, kind: migrate.Kind) -> sa.Engine:
    engine = create_engine(url, must_exist=False)
    migrate.sync(engine, kind)
    return engine


def bench_backend(backend: str, count: int, max_count: int | None, workdir: Path) -> None:
    server = Server(backend, workdir)
    try:
        api_url, cell_url = server.new("api"), server.new("cell")
        api, cell = synced(api_url, "api"), synced(cell_url, "cell")
        cell_uuid = str(uuid.uuid4())
        with api.begin() as conn:
            cell_id = conn.execute(cell_mappings.insert().values(
                uuid=cell_uuid, name="bench", transport_url="memory:///",
                database_connection=cell_url, disabled=False)).inserted_primary_key[0]

        start = time.perf_counter()
        insert_fake_instances(cell, count, host="compute1")
        seeded = time.perf_counter() - start
        print(f"{backend}: seeded {count:,} instances in {seeded:.1f} s "
              f"({count / seeded:,.0f}/s)", flush=True)

        env = {"CELLCTL_STATE_DIR": str(workdir / "state"),
               "CELLCTL_API_DATABASE_CONNECTION": api_url,
               "CELLCTL_DATABASE_CONNECTION": cell_url}
        seconds, rss, code, err = cellctl(env, "map_instances", "--cell_uuid", cell_uuid)
        if code != 0:
            raise SystemExit(f"map_instances exited {code}: {err.strip()}")
        check_mapped(api, count)
        print(f"{backend}: map_instances  {count:,} instances in {seconds:.1f} s = "
              f"{count / seconds:,.0f} instances/s, peak RSS {rss:.0f} MiB", flush=True)

        raw_url = server.new("rawapi")
        raw = synced(raw_url, "api")
        with raw.begin() as conn:  # the same cell, for the foreign key
            conn.execute(cell_mappings.insert().values(id=cell_id, uuid=cell_uuid))
        raw_seconds = raw_insert_seconds(cell, raw, cell_id)
        raw.dispose()
        print(f"{backend}: raw INSERT     {count:,} rows in {raw_seconds:.1f} s = "
              f"{count / raw_seconds:,.0f} rows/s, batches of {WRITE_BATCH:,}; "
              f"map_instances reaches {raw_seconds / seconds:.0%} of it", flush=True)

        if max_count:
            with api.begin() as conn:
                conn.exec_driver_sql("DELETE FROM instance_mappings")
            bounded_runs(env, cell_uuid, count, max_count, backend)
            check_mapped(api, count)
        api.dispose()
        cell.dispose()
    finally:
        server.drop()


def bounded_runs(env: dict[str, str], cell_uuid: str, count: int, max_count: int,
                 backend: str) -> None:
    runs, total, peak = 0, 0.0, 0.0
    code = 1
    while code == 1:
        seconds, rss, code, err = cellctl(env, "map_instances", "--cell_uuid", cell_uuid,
                                          "--max-count", str(max_count))
        if code not in (0, 1):
            raise SystemExit(f"map_instances --max-count exited {code}: {err.strip()}")
        runs, total, peak = runs + 1, total + seconds, max(peak, rss)
    print(f"{backend}: --max-count {max_count:,}: {runs} runs, {total:.1f} s = "
          f"{count / total:,.0f} instances/s, peak RSS {peak:.0f} MiB", flush=True)


def check_mapped(api: sa.Engine, count: int) -> None:
    with api.connect() as conn:
        mapped = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM instance_mappings WHERE cell_id IS NOT NULL").scalar()
    if mapped != count:
        raise SystemExit(f"expected {count} mappings, found {mapped}")


def raw_insert_seconds(cell: sa.Engine, raw: sa.Engine, cell_id: int) -> float:
    """Seconds the database spends on plain multi-row INSERTs of the same mapping rows."""
    elapsed = 0.0
    with raw.connect() as conn:
        for statement in insert_statements(cell, cell_id):
            start = time.perf_counter()
            conn.exec_driver_sql(statement)
            conn.commit()
            elapsed += time.perf_counter() - start
    return elapsed


def insert_statements(cell: sa.Engine, cell_id: int) -> Iterator[str]:
    """One multi-row INSERT per batch of WRITE_BATCH instances, values written out."""
    query = sa.select(instances.c.uuid, instances.c.project_id, instances.c.user_id)
    with cell.connect() as conn:
        rows = conn.execution_options(yield_per=WRITE_BATCH).execute(query)
        for batch in rows.partitions(WRITE_BATCH):
            # Fake ids are hex and UUIDs: no quoting needed.
            values = ",".join(f"('{r.uuid}', {cell_id}, '{r.project_id}', '{r.user_id}', 0, "
                              "'2026-01-01 00:00:00')" for r in batch)
            yield f"INSERT INTO instance_mappings ({MAPPING_COLUMNS}) VALUES {values}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,mysql")
    parser.add_argument("--max-count", type=int, default=None,
                        help="also time repeated bounded runs of this size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cellctl-bench-") as tmp:
        for backend in args.backends.split(","):
            bench_backend(backend, args.instances, args.max_count, Path(tmp))


if __name__ == "__main__":
    main()
