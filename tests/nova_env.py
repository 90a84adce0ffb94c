"""The real nova-manage for the side-by-side tests: nova 34.0.0 and Nova's own schemas.

- ``nova_venv_path``: nova 34.0.0 from PyPI in a throwaway virtualenv, cached
  under ``~/.cache/cellctl-tests`` and built once (under a file lock, so two
  xdist workers never build it at once; rebuilt when broken). If it cannot be
  built the nova tests are skipped locally and fail with CI=true.
- ``nova_schema``: once per test run, ``nova-manage api_db sync`` and
  ``nova-manage db sync`` build Nova's API and cell schemas on MariaDB; their
  exact DDL (``SHOW CREATE TABLE``, foreign keys included) and Alembic version
  rows are kept, so each case gets fresh Nova-built databases in well under a
  second instead of re-running Nova's migrations.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from pypi_venv import PypiVenv, cached_venv, file_lock

NOVA_VERSION = "34.0.0"
TRANSPORT_URL = "rabbit://guest:guest@127.0.0.1:5672/"
NOVA_MANAGE_TIMEOUT = 300  # seconds; a hung nova-manage must fail the test, not the run
_LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \d+ [A-Z]+ ")


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """stdout's lines, without oslo.log's records (nova-manage logs to stdout too)."""
        return [line for line in self.stdout.splitlines()
                if line.strip() and not _LOG_RECORD.match(line)]

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr[-3000:]}"


# --- the nova virtualenv ----------------------------------------------------

NOVA = PypiVenv("nova", NOVA_VERSION, "nova-manage", "nova.cmd.manage", "CELLCTL_TEST_NOVA_VENV")


def nova_venv() -> Path:
    """The cached nova virtualenv (``CELLCTL_TEST_NOVA_VENV``: an existing one instead)."""
    return cached_venv(NOVA)


# --- Nova's schemas, built by nova-manage once per run ----------------------


@dataclass
class NovaSchema:
    """Nova's DDL per database kind ("api", "main"), and the rows of alembic_version."""

    ddl: dict[str, list[str]]
    versions: dict[str, list[str]]


def _mysql_server() -> str:
    # Imported here, not at the top: conftest imports this module's fixtures.
    from conftest import MYSQL_SERVER

    return MYSQL_SERVER


def server_engine(database: str = "") -> sa.Engine:
    return sa.create_engine(f"{_mysql_server()}/{database}")


def mysql_url(database: str) -> str:
    return f"{_mysql_server()}/{database}?charset=utf8"


def server_sql(*statements: str) -> None:
    engine = server_engine()
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
            conn.commit()
    finally:
        engine.dispose()


def write_nova_conf(path: Path, *, api: str | None, database: str | None,
                    transport_url: str | None) -> Path:
    """nova.conf for nova-manage (and cellctl beside it). A database that cannot be
    reached fails at the first try: oslo.db's default of 10 tries 10 s apart only
    adds warnings on stderr, and 100 s to each such test."""
    lines = ["[DEFAULT]"]
    if transport_url is not None:
        lines.append(f"transport_url = {transport_url}")
    retry_once = ["max_retries = 1", "retry_interval = 0"]
    lines += ["[api_database]", *retry_once]
    if api is not None:
        lines.append(f"connection = {api}")
    lines += ["[database]", *retry_once]
    if database is not None:
        lines.append(f"connection = {database}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def run_nova_manage(venv: Path, conf: Path, *args: str) -> Outcome:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLCTL_")}
    done = subprocess.run(
        [str(venv / "bin" / "nova-manage"), "--config-file", str(conf), *args],
        capture_output=True, text=True, timeout=NOVA_MANAGE_TIMEOUT, env=env,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def build_nova_schema(venv: Path, workdir: Path) -> NovaSchema:
    """Let nova-manage create both schemas on MariaDB and record them."""
    token = uuid.uuid4().hex[:8]
    api_db, main_db = f"ctn_tpl_{token}_api", f"ctn_tpl_{token}_main"
    server_sql(f"CREATE DATABASE {api_db}", f"CREATE DATABASE {main_db}")
    try:
        conf = write_nova_conf(workdir / f"template-{token}.conf", api=mysql_url(api_db),
                               database=mysql_url(main_db), transport_url=TRANSPORT_URL)
        # The two syncs touch different databases: run them at the same time.
        procs = [
            subprocess.Popen(
                [str(venv / "bin" / "nova-manage"), "--config-file", str(conf), *command],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            for command in (["api_db", "sync"], ["db", "sync", "--local_cell"])
        ]
        for proc in procs:
            output, _ = proc.communicate(timeout=NOVA_MANAGE_TIMEOUT)
            if proc.returncode != 0:
                raise RuntimeError(f"nova-manage sync failed: {output.strip()[-500:]}")
        return NovaSchema(
            ddl={"api": _table_ddl(api_db), "main": _table_ddl(main_db)},
            versions={"api": _versions(api_db), "main": _versions(main_db)},
        )
    finally:
        server_sql(f"DROP DATABASE IF EXISTS {api_db}", f"DROP DATABASE IF EXISTS {main_db}")


def _table_ddl(database: str) -> list[str]:
    engine = server_engine(database)
    try:
        return table_ddl(engine)
    finally:
        engine.dispose()


def table_ddl(engine: sa.Engine) -> list[str]:
    """``CREATE TABLE`` of every table, by name: the whole schema, foreign keys included."""
    with engine.connect() as conn:
        tables = conn.exec_driver_sql("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
        names = sorted(row[0] for row in tables)
        return [conn.exec_driver_sql(f"SHOW CREATE TABLE `{name}`").one()[1] for name in names]


def schema_shape(engine: sa.Engine) -> list[list[str]]:
    """Each table's DDL lines, sorted: Nova creates some indexes in a varying order."""
    return [sorted(line.rstrip(",") for line in ddl.splitlines()) for ddl in table_ddl(engine)]


def _versions(database: str) -> list[str]:
    engine = server_engine(database)
    try:
        with engine.connect() as conn:
            return list(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars())
    finally:
        engine.dispose()


def create_nova_database(name: str, kind: str, schema: NovaSchema) -> None:
    """A new database holding exactly the schema Nova built for ``kind``."""
    engine = server_engine()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
            conn.exec_driver_sql(f"USE {name}")
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            for statement in schema.ddl[kind]:
                conn.exec_driver_sql(statement)
            for version in schema.versions[kind]:
                conn.execute(sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": version})
            conn.commit()
    finally:
        engine.dispose()


def shared_nova_schema(tmp_path_factory: pytest.TempPathFactory, venv: Path) -> NovaSchema:
    """Built by the first xdist worker that needs it; the others read its file."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    saved = root / f"nova-{NOVA_VERSION}-schema.json"
    with file_lock(root / "nova-schema.lock"):
        if saved.exists():
            data = json.loads(saved.read_text())
            return NovaSchema(ddl=data["ddl"], versions=data["versions"])
        schema = build_nova_schema(venv, root)
        saved.write_text(json.dumps({"ddl": schema.ddl, "versions": schema.versions}))
        return schema


@pytest.fixture(scope="session")
def nova_venv_path() -> Path:
    from conftest import unavailable

    try:
        return nova_venv()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"nova-manage (nova {NOVA_VERSION} from PyPI)", exc)
        raise  # unreachable: unavailable() skips or fails


@pytest.fixture(scope="session")
def nova_schema(tmp_path_factory: pytest.TempPathFactory, nova_venv_path: Path) -> NovaSchema:
    from conftest import require_server

    require_server("mysql")
    return shared_nova_schema(tmp_path_factory, nova_venv_path)
