"""Time nova-manage 34 and cellctl on the same data: discover_hosts and map_instances.

Both tools get identical MariaDB databases with Nova's own schema (built by
nova-manage, as in tests/nova_env.py): one cell with N compute hosts (a
compute node and a nova-compute service each) or N instances. Each tool runs
as a separate process, start-up included, and the script prints the time,
rows per second, the process's peak RSS and the ratio, and checks that both
tools mapped the same rows. A third copy gets the floor (benchmarks/measure.py,
same driver): for discover_hosts the nodes streamed once, the mappings
inserted in bulk and the nodes marked by id, end to end in a process of its
own; for map_instances the database's time for raw multi-row INSERTs of the
same rows in UUID order. Each tool's time is also given as a ratio to it.

    .venv/bin/python benchmarks/bench_vs_nova.py --hosts 10000 --instances 100000

nova-manage alone needs about 3 minutes for 10,000 hosts and about 14 for
100,000 instances. The nova virtualenv is the tests' cache (built on first
use, ~90 s), or --nova-venv. MariaDB from CELLCTL_TEST_MYSQL (default
root@127.0.0.1:3306). Not run by .ci/run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import nova_env as ns  # noqa: E402
from measure import Child, floor, ratio, scalar  # noqa: E402
from nova_support import seed_uuid  # noqa: E402

CHUNK = 5000
CELL_UUID = seed_uuid("bench:cell1")


@dataclass
class Run:
    tool: str
    seconds: float
    peak_rss_mib: float
    code: int
    mapped: int


def timed(argv: list[str], env: dict[str, str]) -> Child:
    """One process, its output kept; its error lines shown when it fails."""
    child = Child(argv, env, inherit=False)
    if child.code not in (0, 1):  # nova-manage prints its tracebacks on stdout
        errors = [line for line in (child.out + child.err).splitlines() if "rror" in line]
        print("\n".join(line[:300] for line in errors[-5:]), file=sys.stderr)
    return child


class Copy:
    """One tool's databases: an API database and cell1 (also [database]), Nova's schema."""

    def __init__(self, schema: ns.NovaSchema, workdir: Path, tool: str) -> None:
        token = uuid.uuid4().hex[:8]
        self.names = {"api": f"ctn_bench_{token}_api", "cell1": f"ctn_bench_{token}_cell1"}
        ns.create_nova_database(self.names["api"], "api", schema)
        ns.create_nova_database(self.names["cell1"], "main", schema)
        self.conf = ns.write_nova_conf(
            workdir / f"{tool}-{token}.conf", api=self.url("api"), database=self.url("cell1"),
            transport_url=ns.TRANSPORT_URL)
        self.execute("api", (
            "INSERT INTO cell_mappings (created_at, uuid, name, transport_url, "
            "database_connection, disabled) VALUES (NOW(), :uuid, 'cell1', :mq, :db, 0)"
        ), [{"uuid": CELL_UUID, "mq": ns.TRANSPORT_URL, "db": self.url("cell1")}])

    def url(self, role: str) -> str:
        return ns.mysql_url(self.names[role])

    def execute(self, role: str, statement: str, rows: list[dict]) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(role))
        try:
            with engine.begin() as conn:
                for start in range(0, len(rows), CHUNK):
                    conn.execute(sa.text(statement), rows[start:start + CHUNK])
        finally:
            engine.dispose()

    def count(self, role: str, table: str) -> int:
        return scalar(self.url(role), f"SELECT COUNT(*) FROM {table}")

    def drop(self) -> None:
        ns.server_sql(*(f"DROP DATABASE IF EXISTS {name}" for name in self.names.values()))


def seed_hosts(copy: Copy, count: int) -> None:
    services = [{"id": i + 1, "host": f"compute{i:06d}", "uuid": seed_uuid(f"svc{i}")}
                for i in range(count)]
    copy.execute("cell1", (
        "INSERT INTO services (created_at, id, host, `binary`, topic, report_count, disabled, "
        "deleted, forced_down, version, uuid, last_seen_up) VALUES (NOW(), :id, :host, "
        "'nova-compute', 'compute', 0, 0, 0, 0, 66, :uuid, NOW())"), services)
    copy.execute("cell1", (
        "INSERT INTO compute_nodes (created_at, id, service_id, host, hypervisor_hostname, uuid, "
        "vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used, local_gb_used, "
        "hypervisor_type, hypervisor_version, cpu_info, stats, mapped, deleted, "
        "cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio) VALUES (NOW(), :id, "
        ":id, :host, :host, :uuid, 8, 16384, 100, 0, 512, 0, 'QEMU', 8002000, '{}', '{}', 0, 0, "
        "16.0, 1.5, 1.0)"),
        [{**s, "uuid": seed_uuid(f"node{s['id']}")} for s in services])


def seed_instances(copy: Copy, count: int) -> None:
    rows = [{"id": i + 1, "uuid": seed_uuid(f"inst{i}"), "project_id": f"p{i % 50}",
             "user_id": f"u{i % 200}", "created_at": f"2025-01-01 00:00:{i % 60:02d}"}
            for i in range(count)]
    copy.execute("cell1", (
        "INSERT INTO instances (created_at, id, uuid, project_id, user_id, host, node, "
        "vm_state, power_state, memory_mb, vcpus, root_gb, ephemeral_gb, launch_index, locked, "
        "cleaned, hidden, deleted, display_name, instance_type_id) VALUES (:created_at, :id, "
        ":uuid, :project_id, :user_id, 'compute1', 'compute1', 'active', 1, 512, 1, 1, 0, 0, "
        "0, 0, 0, 0, 'vm', 1)"), rows)


def commands(tool: str, copy: Copy, venv: Path, action: list[str]) -> list[str]:
    if tool == "nova-manage":
        return [str(venv / "bin" / "nova-manage"), "--config-file", str(copy.conf), *action]
    return [str(Path(sys.executable).parent / "cellctl"), "--config-file", str(copy.conf),
            *action]


def floor_run(name: str, copy: Copy) -> Child:
    """The floor of ``name`` on ``copy`` (benchmarks/measure.py); for map_instances its
    seconds are the database's time alone for raw INSERTs of the rows in UUID order."""
    cell_id = scalar(copy.url("api"), "SELECT id FROM cell_mappings WHERE name = 'cell1'")
    if name == "discover_hosts":
        return floor(name, copy.url("api"), copy.url("cell1"), cell_id)
    child = floor(name, copy.url("cell1"), copy.url("api"), cell_id, "uuid")
    child.seconds = float(child.out)
    return child


def bench(name: str, rows: int, seed, action: list[str], counted: str, tools: list[str],
          schema: ns.NovaSchema, venv: Path, workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLCTL_")}
    env["CELLCTL_STATE_DIR"] = str(workdir / "state")
    runs = []
    for tool in tools:
        copy = Copy(schema, workdir, tool)
        try:
            seed(copy, rows)
            if tool == "floor":
                child = floor_run(name, copy)
            else:
                child = timed(commands(tool, copy, venv, action), env)
            runs.append(Run(tool, child.seconds, child.rss_mib, child.code,
                            copy.count("api", counted)))
        finally:
            copy.drop()
    for run in runs:
        print(f"{name:15} {rows:>7} rows  {run.tool:12} {run.seconds:8.1f} s "
              f"{rows / run.seconds:9.0f} rows/s  peak RSS {run.peak_rss_mib:6.0f} MiB  "
              f"exit {run.code}  mapped {run.mapped}", flush=True)
    by_tool = {run.tool: run for run in runs}
    if "nova-manage" in by_tool and "cellctl" in by_tool:
        nova, ours = by_tool["nova-manage"], by_tool["cellctl"]
        same = "same rows mapped" if nova.mapped == ours.mapped else "MAPPED ROWS DIFFER"
        print(f"{name:15} cellctl is {nova.seconds / ours.seconds:.1f}x faster ({same})",
              flush=True)
    if "floor" in by_tool:
        least = by_tool["floor"].seconds
        for tool in ("nova-manage", "cellctl"):
            if tool in by_tool:
                print(f"{name:15} {tool} takes {ratio(by_tool[tool].seconds, least)}",
                      flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--tools", default="nova-manage,cellctl,floor",
                        help="comma-separated: nova-manage, cellctl, floor (default all)")
    parser.add_argument("--nova-venv", type=Path,
                        help="a virtualenv with nova 34 (default: the tests' cache)")
    args = parser.parse_args()
    tools = args.tools.split(",")
    venv = args.nova_venv or ns.nova_venv()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        schema = ns.build_nova_schema(venv, workdir)
        cell = ["cell_v2"]
        if args.hosts:
            bench("discover_hosts", args.hosts, seed_hosts, [*cell, "discover_hosts"],
                  "host_mappings", tools, schema, venv, workdir)
        if args.instances:
            bench("map_instances", args.instances, seed_instances,
                  [*cell, "map_instances", "--cell_uuid", CELL_UUID], "instance_mappings",
                  tools, schema, venv, workdir)


if __name__ == "__main__":
    main()
