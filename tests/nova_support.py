"""Side by side with the real nova-manage: the harness behind tests/test_nova_*.py.

``side_by_side`` gives a case two identical copies of one cloud (API, cell1 =
``[database]``, its ``_cell0``, optionally more cells), each with its own
``nova.conf`` and Nova's own schema (see tests/nova_env.py). ``step()`` runs
nova-manage on one copy and cellctl on the other with the same arguments, and
compares exit codes and the resulting rows of the API and cell databases,
ignoring ids, generated UUIDs and timestamps.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from nova_env import (
    TRANSPORT_URL,
    NovaSchema,
    Outcome,
    create_nova_database,
    mysql_url,
    run_nova_manage,
    server_engine,
    server_sql,
    write_nova_conf,
)

from cellctl.cli import main

CELL0_UUID = "00000000-0000-0000-0000-000000000000"
# Deterministic UUIDs for seeded rows, identical in both copies.
_SEED_NAMESPACE = uuid.UUID("6f1c8f4e-2f1e-4b7a-9a63-8c3c9f0e7d11")
# Databases of one copy are named ctn_<case>_<side>_<role>.
_DB_NAME = re.compile(r"ctn_[0-9a-f]{8}_[nc]_")


def seed_uuid(name: str) -> str:
    return str(uuid.uuid5(_SEED_NAMESPACE, name))


# --- one cloud, twice -------------------------------------------------------


@dataclass(frozen=True)
class DbUrl:
    """An argument that is the URL of the database ``role`` in whichever copy runs it."""

    role: str


Arg = str | DbUrl


@dataclass
class Side:
    """One copy of the cloud: "n" is nova-manage's, "c" is cellctl's."""

    name: str
    prefix: str
    conf: Path
    databases: dict[str, str] = field(default_factory=dict)  # role -> database name
    engines: dict[str, sa.Engine] = field(default_factory=dict)

    def url(self, role: str) -> str:
        return mysql_url(self.databases[role])

    def argv(self, args: Sequence[Arg]) -> list[str]:
        return [self.url(a.role) if isinstance(a, DbUrl) else a for a in args]

    def engine(self, role: str) -> sa.Engine:
        if role not in self.engines:
            self.engines[role] = server_engine(self.databases[role])
        return self.engines[role]

    def execute(self, role: str, statement: str, params: Any = None) -> None:
        with self.engine(role).begin() as conn:
            conn.execute(sa.text(statement), params or {})

    def rows(self, role: str, table: str) -> list[dict[str, Any]]:
        with self.engine(role).connect() as conn:
            result = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))
            return [dict(r._mapping) for r in result]

    def dispose(self) -> None:
        for engine in self.engines.values():
            engine.dispose()
        self.engines.clear()


API_TABLES = ("cell_mappings", "host_mappings", "instance_mappings")
CELL_TABLES = ("services", "compute_nodes", "instances")
_IGNORED_COLUMNS = {"id", "created_at", "updated_at", "deleted_at", "last_seen_up"}


class SideBySide:
    """The same cloud twice; every step runs nova-manage on one, cellctl on the other."""

    def __init__(self, venv: Path, schema: NovaSchema, tmp_path: Path) -> None:
        self.venv = venv
        self.schema = schema
        self.tmp_path = tmp_path
        case = uuid.uuid4().hex[:8]
        self.sides = {
            name: Side(name, f"ctn_{case}_{name}_", tmp_path / name / "nova.conf")
            for name in ("n", "c")
        }
        self.seeded_cells: set[str] = {CELL0_UUID}
        # "api.instance_mappings" -> columns where a test asserts a documented
        # difference itself, so the rest of the table is still compared.
        self.ignored_columns: dict[str, set[str]] = {}

    def create(self) -> None:
        """The API database, cell1 (``[database]``) and its cell0 twin, and nova.conf."""
        self.add_databases({"api": "api", "cell1": "main", "cell1_cell0": "main"})
        self.write_conf()

    @property
    def nova(self) -> Side:
        return self.sides["n"]

    @property
    def ours(self) -> Side:
        return self.sides["c"]

    # -- setting up both copies the same way

    def add_database(self, role: str) -> None:
        self.add_databases({role: "main"})

    def add_databases(self, kinds: dict[str, str]) -> None:
        """Create databases (role -> "api" or "main") in both copies, in parallel:
        MariaDB spends its time syncing files per table, not on the CPU."""
        jobs = []
        for side in self.sides.values():
            for role, kind in kinds.items():
                side.databases[role] = side.prefix + role  # first, so drop() finds it
                jobs.append((side.databases[role], kind))
        with ThreadPoolExecutor(len(jobs)) as pool:
            for done in [pool.submit(create_nova_database, name, kind, self.schema)
                         for name, kind in jobs]:
                done.result()

    def empty_database(self, role: str) -> None:
        """Replace ``role``'s database in both copies by an empty one (no schema at all)."""
        for side in self.sides.values():
            side.dispose()
            name = side.databases[role]
            server_sql(f"DROP DATABASE {name}", f"CREATE DATABASE {name}")

    def write_conf(self, *, transport_url: str | None = TRANSPORT_URL,
                   database: bool = True) -> None:
        for side in self.sides.values():
            write_nova_conf(side.conf, api=side.url("api"),
                            database=side.url("cell1") if database else None,
                            transport_url=transport_url)

    def execute(self, role: str, statement: str, params: Any = None) -> None:
        for side in self.sides.values():
            side.execute(role, statement, params)

    def add_cell(self, name: str | None, role: str | None, *, cell_uuid: str | None = None,
                 transport_url: str | None = None, disabled: bool = False) -> str:
        """Map a cell by hand in both API databases (``role`` None: cell0 on its database)."""
        cell_uuid = cell_uuid or seed_uuid(f"cell:{name}")
        self.seeded_cells.add(cell_uuid)
        for side in self.sides.values():
            side.execute("api", (
                "INSERT INTO cell_mappings (created_at, uuid, name, transport_url, "
                "database_connection, disabled) VALUES (NOW(), :uuid, :name, :mq, :db, :disabled)"
            ), {"uuid": cell_uuid, "name": name, "disabled": disabled,
                "mq": transport_url or ("none:///" if cell_uuid == CELL0_UUID
                                        else f"rabbit://guest:guest@mq-{name}:5672/"),
                "db": side.url(role or "cell1_cell0")})
        return cell_uuid

    def map_host(self, host: str, cell_uuid: str) -> None:
        self.execute("api", (
            "INSERT INTO host_mappings (created_at, cell_id, host) "
            "SELECT NOW(), id, :host FROM cell_mappings WHERE uuid = :cell"
        ), {"host": host, "cell": cell_uuid})

    def map_instance(self, instance_uuid: str, cell_uuid: str | None, project: str = "p1",
                     user: str = "u1") -> None:
        self.execute("api", (
            "INSERT INTO instance_mappings (created_at, instance_uuid, cell_id, project_id, "
            "user_id, queued_for_delete) VALUES (NOW(), :instance, "
            "(SELECT id FROM cell_mappings WHERE uuid = :cell), :project, :user, 0)"
        ), {"instance": instance_uuid, "cell": cell_uuid, "project": project, "user": user})

    def add_compute_nodes(self, role: str, nodes: Sequence[dict[str, Any]]) -> None:
        """Rows of compute_nodes: each needs ``host``; ``mapped``/``deleted`` default 0."""
        rows = [{
            "id": n.get("id", i + 1), "host": n["host"],
            "hypervisor_hostname": n.get("hypervisor_hostname", n["host"]),
            "uuid": n.get("uuid", seed_uuid(f"node:{role}:{n['host']}:{i}")),
            "mapped": n.get("mapped", 0), "deleted": n.get("deleted", 0),
            "service_id": n.get("service_id"),
        } for i, n in enumerate(nodes)]
        self.execute(role, (
            "INSERT INTO compute_nodes (created_at, id, service_id, host, hypervisor_hostname, "
            "uuid, vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used, local_gb_used, "
            "hypervisor_type, hypervisor_version, cpu_info, stats, mapped, deleted, "
            "cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio) VALUES "
            "('2025-01-01 00:00:00', :id, :service_id, :host, :hypervisor_hostname, :uuid, "
            "8, 16384, 100, 0, 512, 0, 'QEMU', 8002000, '{}', '{}', :mapped, :deleted, "
            # Set, as nova-compute sets them: nova's objects write their defaults
            # over NULL ratios whenever they save a node.
            "16.0, 1.5, 1.0)"
        ), rows)

    def add_services(self, role: str, services: Sequence[dict[str, Any]]) -> None:
        """Rows of services: each needs ``host``; ``binary`` defaults to nova-compute."""
        rows = [{
            "id": s.get("id", i + 1), "host": s["host"],
            "binary": s.get("binary", "nova-compute"),
            "topic": s.get("topic", "compute"), "deleted": s.get("deleted", 0),
            "disabled": s.get("disabled", 0),
            "uuid": s.get("uuid", seed_uuid(f"service:{role}:{s['host']}:{i}")),
        } for i, s in enumerate(services)]
        self.execute(role, (
            "INSERT INTO services (created_at, id, host, `binary`, topic, report_count, "
            "disabled, deleted, forced_down, version, uuid, last_seen_up) VALUES "
            "('2025-01-01 00:00:00', :id, :host, :binary, :topic, 0, :disabled, :deleted, 0, "
            "66, :uuid, '2025-01-01 00:00:00')"
        ), rows)

    def add_instances(self, role: str, instances: Sequence[dict[str, Any]]) -> list[str]:
        """Rows of instances, oldest first unless ``created_at`` says otherwise; their UUIDs."""
        rows = [{
            "id": inst.get("id", i + 1),
            "uuid": inst.get("uuid", seed_uuid(f"instance:{role}:{i}")),
            "project_id": inst.get("project_id", "p1"), "user_id": inst.get("user_id", "u1"),
            "host": inst.get("host"), "node": inst.get("host"),
            "deleted": inst.get("deleted", 0), "hidden": inst.get("hidden", 0),
            "vm_state": inst.get("vm_state", "active"),
            "created_at": inst.get("created_at", f"2025-01-01 00:{i // 60:02d}:{i % 60:02d}"),
        } for i, inst in enumerate(instances)]
        for row in rows:
            if row["deleted"]:
                row["deleted"] = row["id"]  # Nova's soft delete: deleted = id
        self.execute(role, (
            "INSERT INTO instances (created_at, id, uuid, project_id, user_id, host, node, "
            "vm_state, power_state, memory_mb, vcpus, root_gb, ephemeral_gb, launch_index, "
            "locked, cleaned, hidden, deleted, display_name, instance_type_id) VALUES "
            "(:created_at, :id, :uuid, :project_id, :user_id, :host, :node, :vm_state, 1, "
            "512, 1, 1, 0, 0, 0, 0, :hidden, :deleted, 'vm', 1)"
        ), rows)
        return [row["uuid"] for row in rows]

    # -- running both tools

    def nova_manage(self, *args: Arg, side: Side | None = None) -> Outcome:
        """nova-manage on its own copy, or on ``side`` (cellctl's, to resume a cellctl run)."""
        side = side or self.nova
        return run_nova_manage(self.venv, side.conf, *side.argv(args))

    def cellctl(self, *args: Arg) -> Outcome:
        env: dict[str, str | None] = {
            name: None for name in os.environ if name.startswith("CELLCTL_")
        }
        env["CELLCTL_STATE_DIR"] = str(self.tmp_path / "cellctl-state")
        result = CliRunner(env=env).invoke(
            main, ["--config-file", str(self.ours.conf), *self.ours.argv(args)],
            catch_exceptions=False,
        )
        return Outcome(result.exit_code, result.stdout, result.stderr)

    def step(self, *args: Arg, code: int | None = None, nova_code: int | None = None,
             cellctl_code: int | None = None, same_state: bool = True,
             except_tables: Sequence[str] = ()) -> tuple[Outcome, Outcome]:
        """Run ``args`` with both tools; check the exit codes and compare the databases.

        ``code`` is what both must exit with; a documented difference gives
        ``nova_code`` and ``cellctl_code`` instead, and ``except_tables``
        (``"cell1.compute_nodes"``) or ``same_state=False`` leaves tables where
        the difference shows to the test's own assertions.
        """
        nova, ours = self.nova_manage(*args), self.cellctl(*args)
        expected_nova = code if nova_code is None else nova_code
        expected_ours = code if cellctl_code is None else cellctl_code
        assert (nova.code, ours.code) == (expected_nova, expected_ours), (
            f"{' '.join(self.ours.argv(args))}\n=== nova-manage: {nova}\n=== cellctl: {ours}"
        )
        if same_state:
            self.assert_same_state(" ".join(self.ours.argv(args)), except_tables)
        return nova, ours

    # -- comparing the copies

    def state(self, side: Side) -> dict[str, list[tuple[Any, ...]]]:
        """Every compared table of ``side``, normalised, as sorted rows."""
        cells = side.rows("api", "cell_mappings")
        labels = self._cell_labels(cells)
        dump: dict[str, list[tuple[Any, ...]]] = {}
        for table in API_TABLES:
            rows = cells if table == "cell_mappings" else side.rows("api", table)
            dump[f"api.{table}"] = self._normalised(f"api.{table}", rows, labels)
        for role in sorted(side.databases):
            if role == "api":
                continue
            for table in CELL_TABLES:
                name = f"{role}.{table}"
                try:
                    dump[name] = self._normalised(name, side.rows(role, table), labels)
                except sa.exc.ProgrammingError:  # no such table: a database left empty
                    dump[name] = [("<no table>",)]
        return dump

    def _normalised(self, table: str, rows: list[dict[str, Any]],
                    labels: dict[str, Any]) -> list[tuple[Any, ...]]:
        return _normalised(rows, labels, self.ignored_columns.get(table, set()))

    def _cell_labels(self, cells: list[dict[str, Any]]) -> dict[str, Any]:
        """cell_mappings.id -> a label that is the same in both copies."""
        labels: dict[str, Any] = {}
        generated = 0
        for cell in cells:  # in id order: both tools create cells in the same order
            if cell["uuid"] in self.seeded_cells:
                label = cell["uuid"]
            else:
                generated += 1
                label = f"<generated cell {generated}>"
            labels[cell["id"]] = label
            labels[cell["uuid"]] = label
        return labels

    def table(self, side: Side, outcome: Outcome) -> list[list[str]]:
        """A printed table with database names and generated cell UUIDs normalised."""
        labels = self._cell_labels(side.rows("api", "cell_mappings"))
        return [[str(labels.get(cell, _DB_NAME.sub("ctn_<case>_", cell))) for cell in row]
                for row in parse_table(outcome.stdout)]

    def assert_same_table(self, nova: Outcome, ours: Outcome) -> None:
        assert self.table(self.ours, ours) == self.table(self.nova, nova), (
            f"\n{nova.stdout}\n{ours.stdout}")

    def assert_same_state(self, what: str = "", except_tables: Sequence[str] = ()) -> None:
        nova, ours = self.state(self.nova), self.state(self.ours)
        differing = {
            table: {"only after nova-manage": [r for r in nova[table] if r not in ours[table]],
                    "only after cellctl": [r for r in ours[table] if r not in nova[table]]}
            for table in nova if nova[table] != ours[table] and table not in except_tables
        }
        assert not differing, f"after {what!r} the databases differ: {differing}"

    def drop(self) -> None:
        for side in self.sides.values():
            side.dispose()
        names = [name for side in self.sides.values() for name in side.databases.values()]
        if names:
            with ThreadPoolExecutor(len(names)) as pool:
                list(pool.map(lambda name: server_sql(f"DROP DATABASE IF EXISTS {name}"), names))


def _normalised(rows: list[dict[str, Any]], labels: dict[str, Any],
                ignored: set[str]) -> list[tuple[Any, ...]]:
    out = []
    for row in rows:
        values = []
        for key, value in sorted(row.items()):
            if key in _IGNORED_COLUMNS or key in ignored:
                continue
            if key == "cell_id":
                value = labels.get(value, value)
            elif key == "uuid" and value in labels:
                value = labels[value]
            elif key == "deleted":
                value = bool(value)  # soft delete stores the row's own id
            elif isinstance(value, str):
                value = _DB_NAME.sub("ctn_<case>_", value)
            values.append((key, value))
        out.append(tuple(values))
    return sorted(out, key=repr)


def parse_table(text: str) -> list[list[str]]:
    """The cells of a PrettyTable/tabulate ``+---+`` table, header row first."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|")]


@pytest.fixture
def side_by_side(nova_venv_path: Path, nova_schema: NovaSchema,
                 tmp_path: Path) -> Iterator[SideBySide]:
    pair = SideBySide(nova_venv_path, nova_schema, tmp_path)
    try:
        pair.create()
        yield pair
    finally:
        pair.drop()
