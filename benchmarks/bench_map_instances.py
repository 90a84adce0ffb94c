"""Time ``cellctl map_instances`` on 1,000,000 instances against its floor, on SQLite and MariaDB.

For each backend: fresh API and cell databases (created and dropped here),
the instances seeded by ``cellctl dev add-instances``, then the real command
run as a subprocess end to end (start-up included), printing instances/s and
the child's peak RSS. Beside it, in the same run, the floor
(``measure.map_instances_floor``, the raw INSERT): the database's own time
for plain multi-row INSERTs of the same mapping rows into a fresh
``instance_mappings`` on the same server, in batches of the same size, their
SQL text rendered beforehand so only the database's work is timed; once with
each batch in the order read, once sorted by UUID as map_instances writes it.
``--repeat N`` alternates N runs of each (map_instances into a fresh API
database each time) and keeps the best of each, for a loaded machine.
``--raw-insert`` measures only the floor that map_instances is held to, the
UUID-ordered raw INSERT (``--raw-insert read`` the other; both by default).

``--max-count N`` also times mapping the same cell by repeated bounded runs
(``map_instances --max-count N`` until it exits 0): one ordered query per run
with a keyset after the marker, instead of one streaming query.

    .venv/bin/python benchmarks/bench_map_instances.py [--instances 1000000]
        [--backends sqlite,mysql] [--repeat 3] [--raw-insert [uuid|read]] [--max-count 100000]

MariaDB from CELLCTL_TEST_MYSQL (default root@127.0.0.1:3306). Not run by .ci/run.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from measure import BATCH, Child, Server, cellctl, floor, new_cell, scalar

RAW_ORDERS = ("read", "uuid")  # each batch as read, or sorted by UUID as map_instances writes it


def bench_backend(backend: str, count: int, repeat: int, max_count: int | None,
                  orders: list[str], workdir: Path) -> None:
    server = Server(backend, workdir)
    try:
        cell_url = server.new("cell")
        env = {"CELLCTL_STATE_DIR": str(workdir / "state"), "CELLCTL_DATABASE_CONNECTION": cell_url}
        cellctl(env, "db", "sync").expect(0)
        seed_env, _ = fresh_api(server, env)
        seeded = cellctl(seed_env, "dev", "add-instances", "--count", str(count),
                         "--host", "compute1").expect(0)
        print(f"{backend}: seeded {count:,} instances in {seeded.seconds:.1f} s "
              f"({count / seeded.seconds:,.0f}/s)", flush=True)

        runs: list[Child] = []
        raw: dict[str, list[float]] = {order: [] for order in orders}
        for _ in range(repeat):  # alternated, so both see the same load
            # Each timed run starts on a settled server, without the databases (and
            # the page writes) of the runs before it.
            for order in raw:
                raw_url = server.new("rawapi")
                cellctl({**env, "CELLCTL_API_DATABASE_CONNECTION": raw_url}, "api_db",
                        "sync").expect(0)
                cell_id = new_cell(raw_url)
                server.settle()
                raw[order].append(float(floor("map_instances", cell_url, raw_url,
                                              cell_id, order).out))
                server.discard(raw_url)
            run_env, cell_uuid = fresh_api(server, env)
            server.settle()
            runs.append(cellctl(run_env, "map_instances", "--cell_uuid", cell_uuid).expect(0))
            check_mapped(run_env, count)
            server.discard(run_env["CELLCTL_API_DATABASE_CONNECTION"])
        mapped = min(runs, key=lambda run: run.seconds)
        print(f"{backend}: map_instances  {count:,} instances in {mapped.seconds:.1f} s = "
              f"{count / mapped.seconds:,.0f} instances/s, peak RSS {mapped.rss_mib:.0f} MiB "
              f"(best of {repeat}: {', '.join(f'{run.seconds:.1f}' for run in runs)} s)",
              flush=True)
        for order, seconds in raw.items():
            best = min(seconds)
            print(f"{backend}: raw INSERT, {order + ' order':10} {count:,} rows in "
                  f"{best:.1f} s = {count / best:,.0f} rows/s in batches of {BATCH:,} "
                  f"(best of {repeat}); map_instances reaches {best / mapped.seconds:.0%} of it",
                  flush=True)

        if max_count:
            bounded_env, bounded_cell = fresh_api(server, env)
            bounded_runs(bounded_env, bounded_cell, count, max_count, backend)
            check_mapped(bounded_env, count)
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
    mapped = scalar(env["CELLCTL_API_DATABASE_CONNECTION"],
                    "SELECT COUNT(*) FROM instance_mappings WHERE cell_id IS NOT NULL")
    if mapped != count:
        raise SystemExit(f"expected {count} mappings, found {mapped}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,mysql")
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate this many runs of map_instances and the floor")
    parser.add_argument("--raw-insert", choices=RAW_ORDERS, nargs="?", const="uuid",
                        default=None, help="measure only this raw INSERT floor (uuid when "
                        "given alone; both orders by default)")
    parser.add_argument("--max-count", type=int, default=None,
                        help="also time repeated bounded runs of this size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cellctl-bench-") as tmp:
        for backend in args.backends.split(","):
            orders = [args.raw_insert] if args.raw_insert else list(RAW_ORDERS)
            bench_backend(backend, args.instances, args.repeat, args.max_count, orders,
                          Path(tmp))


if __name__ == "__main__":
    main()
