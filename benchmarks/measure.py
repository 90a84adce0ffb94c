"""What the benchmarks share: timed child processes, throw-away databases, and the floors.

A figure is only comparable on the machine and in the minute it was taken,
so each benchmark also measures, in the same run and with the same driver,
the *floor* of its answer: the least work any implementation must do for it.

- ``discover_hosts``: stream the cell's live compute nodes not marked mapped,
  once; insert the new hosts' mappings with multi-row INSERTs (the values
  escaped by the driver) and mark the nodes mapped by id, one transaction per
  batch on each side. Run as its own process and timed end to end, Python's
  start-up and the driver's import included, as cellctl's runs are.
- ``map_instances``: the database's time alone for plain multi-row INSERTs of
  the same mapping rows into a fresh ``instance_mappings``, in batches of
  ``BATCH``, the SQL text rendered beforehand and not timed; each batch in the
  order read (``read``) or sorted by UUID as map_instances writes it (``uuid``).

Every floor runs in a child (``python measure.py FLOOR ARGS``) like the
command it is compared with. This module is the one way the benchmarks run a
child and read its wall time, CPU time and peak RSS (``Child``): every child
is started by a small launcher process, so each peak RSS figure is that
process's own. Linux reports a child's peak RSS (``ru_maxrss``) as at least
its parent's RSS at the moment it was forked (the high-water mark is carried
across exec), so a child forked straight from a benchmark that holds seeded
rows would be charged for them; the launcher is small, and a grandchild
forked from it is not. Any command can be run this way (cellctl, a floor,
nova-manage), unlike reading ``VmHWM`` at exit, which needs a Python wrapper
in the child, and counts what the command's own children used too. A figure
is never below the launcher's own size (about 10 MiB).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

MYSQL_SERVER = os.environ.get("CELLCTL_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
BATCH = 20_000  # rows per transaction, as map_instances and discover_hosts write them
MAPPING_COLUMNS = ("instance_uuid", "cell_id", "project_id", "user_id", "queued_for_delete",
                   "created_at")
NOW = "2026-01-01 00:00:00"
MAX_STATEMENT_CHARS = 1_000_000  # below every server's max_allowed_packet default


# Runs the children: a process of its own, whatever this one's size when it starts
# it (its exec gives it a fresh address space), so that no child's peak RSS includes
# ours (Linux counts a child's RSS from its fork or vfork, before the exec, which
# is the forking process's size at that moment). Kept as small as Python gets
# (-I -S, no subprocess module: about 10 MiB), the least any figure can show.
# A child's ru_maxrss from wait4 also covers the children it waited for.
_LAUNCHER = """
import json, os, sys, time
for line in sys.stdin:
    argv, env, out, err = json.loads(line)
    files = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)] + [
        (os.POSIX_SPAWN_OPEN, fd, name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        for fd, name in ((1, out), (2, err))]
    start = time.perf_counter()
    try:
        pid = os.posix_spawnp(argv[0], argv, env, file_actions=files)
    except OSError as error:
        with open(err, "w") as stderr:
            stderr.write(f"{argv[0]}: {error}")
        print(json.dumps([0.0, 0, 127, 0.0]), flush=True)
        continue
    _pid, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    print(json.dumps([seconds, usage.ru_maxrss, os.waitstatus_to_exitcode(status),
                      usage.ru_utime + usage.ru_stime]), flush=True)
"""
_launcher: subprocess.Popen[str] | None = None  # started by the first Child


def _launch() -> subprocess.Popen[str]:
    global _launcher
    if _launcher is None:
        _launcher = subprocess.Popen([sys.executable, "-I", "-S", "-c", _LAUNCHER],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return _launcher


class Child:
    """One finished child process: seconds, CPU seconds, its own peak RSS (MiB), exit code,
    output."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, *,
                 inherit: bool = True) -> None:
        """Run ``argv`` with ``env`` added to this process's environment (or, without
        ``inherit``, as its whole environment)."""
        launcher = _launch()
        assert launcher.stdin is not None and launcher.stdout is not None
        environ = {**os.environ, **(env or {})} if inherit else dict(env or {})
        with tempfile.TemporaryDirectory(prefix="cellctl-bench-child-") as tmp:
            out, err = Path(tmp, "out"), Path(tmp, "err")
            request = [argv, environ, str(out), str(err)]
            launcher.stdin.write(json.dumps(request) + "\n")
            launcher.stdin.flush()
            self.seconds, rss_kib, self.code, self.cpu = json.loads(launcher.stdout.readline())
            self.out, self.err = out.read_text(), err.read_text()
        self.rss_mib = rss_kib / 1024
        self.argv = argv

    def expect(self, *codes: int) -> Child:
        if self.code not in codes:
            raise SystemExit(f"{self.argv} exited {self.code}: "
                             f"{(self.err or self.out).strip()[-2000:]}")
        return self


def cellctl(env: dict[str, str], *args: str) -> Child:
    """``python -m cellctl ARGS``, with ``env`` added to this process's environment."""
    return Child([sys.executable, "-m", "cellctl", *args], env)


def floor(name: str, *args: str | int) -> Child:
    """Run the floor ``name`` (``discover_hosts``, ``map_instances``) in a child process."""
    return Child([sys.executable, __file__, name, *map(str, args)]).expect(0)


def best(children: Iterable[Child]) -> Child:
    """The child with the best (least) wall time."""
    return min(children, key=lambda child: child.seconds)


def times(value: float, base: float, width: int = 4) -> str:
    """``value`` as a multiple of ``base``: ``1.23x``."""
    return f"{value / base:{width}.2f}x"


def ratio(seconds: float, floor_seconds: float) -> str:
    return f"{times(seconds, floor_seconds, 0)} the floor"


class Server:
    """Creates fresh databases on one backend (``sqlite`` or a MySQL server URL) and drops
    them at the end."""

    def __init__(self, backend: str, workdir: Path) -> None:
        self.backend = MYSQL_SERVER if backend == "mysql" else backend
        self.workdir = workdir
        self.created: list[str] = []

    def new(self, role: str) -> str:
        name = f"cellctl_bench_{role}_{uuid.uuid4().hex[:8]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir / (name + '.sqlite')}"
        self.admin(f"CREATE DATABASE {name}")
        self.created.append(name)
        return f"{self.backend}/{name}"

    def drop(self) -> None:
        if self.created:
            self.admin(*(f"DROP DATABASE IF EXISTS {name}" for name in self.created))

    def discard(self, url: str) -> None:
        """Drop the database of ``url`` (one of ours) now, not at the end."""
        name = url.rsplit("/", 1)[-1]
        if self.backend == "sqlite":
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
        elif name in self.created:
            self.admin(f"DROP DATABASE IF EXISTS {name}")
            self.created.remove(name)

    def settle(self, timeout: float = 60.0) -> float:
        """Wait until the MySQL server has finished the background work of earlier
        runs (purge, page writes: its dirty-page count and history length unchanged
        for two seconds), so that a timed run does not start while the one before it
        is still being written out; the seconds waited. Nothing to wait for on SQLite."""
        if self.backend == "sqlite":
            return 0.0
        import sqlalchemy as sa

        engine = sa.create_engine(self.backend)
        start = time.monotonic()
        seen: list[tuple[Any, ...]] = []
        try:
            with engine.connect() as conn:
                while time.monotonic() - start < timeout:
                    seen.append(tuple(sorted(conn.exec_driver_sql(
                        "SHOW GLOBAL STATUS WHERE Variable_name IN ("
                        "'Innodb_buffer_pool_pages_dirty', 'Innodb_history_list_length')"
                    ).all())))
                    if len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]:
                        break
                    time.sleep(1)
        finally:
            engine.dispose()
        return time.monotonic() - start

    def admin(self, *statements: str) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.backend)
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
        engine.dispose()


def seed_compute_hosts(url: str, count: int, name: Callable[[int], str],
                       chunk: int = 5000) -> None:
    """``count`` compute hosts named ``name(n)`` in bulk, as Nova writes them: a
    nova-compute service and its compute node each, ``chunk`` hosts per transaction."""
    import sqlalchemy as sa

    from cellctl.clock import utcnow
    from cellctl.tables.cell import compute_nodes, services
    from cellctl.tables.rows import compute_node_row, service_row

    engine = sa.create_engine(url)
    now = utcnow()
    try:
        for first in range(0, count, chunk):
            hosts = [name(n) for n in range(first, min(count, first + chunk))]
            with engine.begin() as conn:
                conn.execute(services.insert(), [service_row(h, "nova-compute", now=now)
                                                 for h in hosts])
                ids = dict(conn.execute(sa.select(services.c.host, services.c.id)
                                        .where(services.c.host.in_(hosts))).all())
                conn.execute(compute_nodes.insert(), [compute_node_row(h, ids[h], now=now)
                                                      for h in hosts])
    finally:
        engine.dispose()


def new_cell(api_url: str, name: str = "floor") -> int:
    """A cell mapping (for the foreign key) in a synced API database; its id."""
    import sqlalchemy as sa

    engine = sa.create_engine(api_url)
    try:
        with engine.begin() as conn:
            return int(conn.exec_driver_sql(
                f"INSERT INTO cell_mappings (uuid, name) VALUES ('{uuid.uuid4()}', '{name}')"
            ).lastrowid)
    finally:
        engine.dispose()


def scalar(url: str, statement: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(statement).scalar() or 0)
    finally:
        engine.dispose()


# --- the floors, each run in a child ------------------------------------------------


def discover_hosts_floor(api_url: str, cell_url: str, cell_id: int, batch: int) -> None:
    """Map every unmapped live compute node's host to the cell, the least work it takes."""
    import sqlalchemy as sa

    api, cell = sa.create_engine(api_url), sa.create_engine(cell_url)
    api_conn, cell_conn = api.raw_connection(), cell.raw_connection()
    writer = cell.raw_connection()  # the read stream keeps its own connection busy
    insert = _inserter(api.dialect.driver, api_conn)
    try:
        known = {host for (host,) in _stream(api.dialect.driver, api_conn,
                                             "SELECT host FROM host_mappings", batch)}
        nodes = _stream(cell.dialect.driver, cell_conn,
                        "SELECT id, host FROM compute_nodes WHERE deleted = 0 AND "
                        "(mapped IS NULL OR mapped < 1)", batch)
        for part in _parts(nodes, batch):
            hosts = sorted({host for _, host in part} - known)
            known.update(hosts)
            insert("host_mappings", ("cell_id", "host", "created_at"),
                   [(cell_id, host, NOW) for host in hosts])
            api_conn.commit()
            ids = ",".join(str(node_id) for node_id, _ in part)
            cursor = writer.cursor()
            cursor.execute(f"UPDATE compute_nodes SET mapped = 1 WHERE id IN ({ids})")
            writer.commit()
    finally:
        for conn in (api_conn, cell_conn, writer):
            conn.close()


def map_instances_floor(cell_url: str, api_url: str, cell_id: int, order: str,
                        batch: int) -> float:
    """Seconds the database spends on plain multi-row INSERTs of the cell's mapping rows."""
    import sqlalchemy as sa

    statements = list(_mapping_inserts(cell_url, cell_id, batch, by_uuid=order == "uuid"))
    api = sa.create_engine(api_url)
    conn = api.raw_connection()
    elapsed = 0.0
    try:
        cursor = conn.cursor()
        for statement in statements:
            start = time.perf_counter()
            cursor.execute(statement)
            conn.commit()
            elapsed += time.perf_counter() - start
    finally:
        conn.close()
        api.dispose()
    return elapsed


def _mapping_inserts(cell_url: str, cell_id: int, batch: int, *,
                     by_uuid: bool) -> Iterator[str]:
    """One multi-row INSERT per batch, values written out (benchmark ids need no quoting)."""
    import sqlalchemy as sa

    cell = sa.create_engine(cell_url)
    conn = cell.raw_connection()
    try:
        rows = _stream(cell.dialect.driver, conn, "SELECT uuid, project_id, user_id FROM "
                       "instances ORDER BY created_at, id", batch)
        for part in _parts(rows, batch):
            ordered = sorted(part) if by_uuid else part
            values = ",".join(f"('{u}', {cell_id}, '{p}', '{us}', 0, '{NOW}')"
                              for u, p, us in ordered)
            yield f"INSERT INTO instance_mappings ({', '.join(MAPPING_COLUMNS)}) VALUES {values}"
    finally:
        conn.close()
        cell.dispose()


def _stream(driver: str, conn: Any, sql: str, size: int) -> Iterator[Sequence[Any]]:
    """The rows of ``sql`` as the driver's tuples: PyMySQL's unbuffered; SQLite's all at
    once, since an open read would keep the same file's writer from committing."""
    if driver != "pymysql":
        cursor = conn.cursor()
        cursor.execute(sql)
        rows = cursor.fetchall()
        cursor.close()
        yield from rows
        return
    from pymysql.cursors import SSCursor

    cursor = conn.cursor(SSCursor)
    cursor.execute(sql)
    while rows := cursor.fetchmany(size):
        yield from rows
    cursor.close()


def _parts(rows: Iterator[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    part: list[Sequence[Any]] = []
    for row in rows:
        part.append(row)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def _inserter(driver: str, conn: Any) -> Callable[[str, Sequence[str], list[tuple]], None]:
    """Multi-row INSERTs: PyMySQL's with the driver's escaping, sqlite3's executemany."""

    def pymysql_insert(table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        tuples = ["(" + ",".join(conn.escape(value) for value in row) + ")" for row in rows]
        cursor = conn.cursor()
        run: list[str] = []
        size = len(head)
        for item in tuples:
            if run and size + len(item) + 1 > MAX_STATEMENT_CHARS:
                cursor.execute(head + ",".join(run))
                run, size = [], len(head)
            run.append(item)
            size += len(item) + 1
        if run:
            cursor.execute(head + ",".join(run))

    def sqlite_insert(table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        marks = ",".join("?" * len(columns))
        conn.cursor().executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    if driver == "pymysql":
        return pymysql_insert
    if driver == "pysqlite":
        return sqlite_insert
    raise SystemExit(f"no floor for the {driver} driver")


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one floor (used by the benchmarks).")
    floors = parser.add_subparsers(dest="floor", required=True)
    hosts = floors.add_parser("discover_hosts")
    hosts.add_argument("api_url")
    hosts.add_argument("cell_url")
    hosts.add_argument("cell_id", type=int)
    hosts.add_argument("batch", type=int, nargs="?", default=BATCH)
    instances = floors.add_parser("map_instances")
    instances.add_argument("cell_url")
    instances.add_argument("api_url")
    instances.add_argument("cell_id", type=int)
    instances.add_argument("order", choices=("read", "uuid"))
    instances.add_argument("batch", type=int, nargs="?", default=BATCH)
    args = parser.parse_args()
    if args.floor == "discover_hosts":
        discover_hosts_floor(args.api_url, args.cell_url, args.cell_id, args.batch)
    else:
        print(map_instances_floor(args.cell_url, args.api_url, args.cell_id, args.order,
                                  args.batch))


if __name__ == "__main__":
    main()
