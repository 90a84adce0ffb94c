"""Fixtures: real databases on SQLite, MariaDB and PostgreSQL, and the CLI.

Every test gets its own freshly created, uniquely named databases, dropped
afterwards, so runs never see each other. A server that cannot be reached
skips its tests locally but fails them when CI=true.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from cellctl.cli import main

MYSQL_SERVER = os.environ.get("CELLCTL_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
POSTGRES_SERVER = os.environ.get(
    "CELLCTL_TEST_POSTGRESQL", "postgresql+psycopg://postgres@127.0.0.1:5432"
)
RABBITMQ_URL = os.environ.get("CELLCTL_TEST_RABBITMQ", "rabbit://guest:guest@127.0.0.1:5672/")
IN_CI = os.environ.get("CI", "").lower() == "true"

BACKENDS = ["sqlite", "mysql", "postgresql"]


@pytest.fixture(scope="session", autouse=True)
def _no_nova_configuration_outside_home() -> None:
    """With no --config-file, cellctl reads oslo.config's default files for nova-manage
    (~/.nova, ~, /etc/nova, /etc): tests that rely on the embedded default need a
    machine without /etc/nova configuration. Tests point $HOME at their own directory."""
    from oslo_config import cfg

    home = os.environ.get("HOME")
    os.environ["HOME"] = "/nonexistent-cellctl-test-home"
    try:
        found = cfg.find_config_files("nova", "nova-manage") + cfg.find_config_dirs(
            "nova", "nova-manage")
    finally:
        if home is None:
            del os.environ["HOME"]
        else:
            os.environ["HOME"] = home
    if found:
        pytest.fail(f"This machine has Nova configuration the tests would read: {found}",
                    pytrace=False)


def unavailable(what: str, why: object) -> None:
    """Skip locally; fail loudly in CI, where every server must be up."""
    message = f"{what} is not reachable: {why}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


_server_checked: dict[str, str | None] = {}


def require_server(backend: str) -> None:
    if backend == "sqlite":
        return
    if backend not in _server_checked:
        url = MYSQL_SERVER if backend == "mysql" else POSTGRES_SERVER + "/postgres"
        try:
            engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
            with engine.connect():
                pass
            engine.dispose()
            _server_checked[backend] = None
        except Exception as exc:
            _server_checked[backend] = str(exc).splitlines()[0]
    if _server_checked[backend] is not None:
        unavailable(backend, _server_checked[backend])


@dataclass
class DatabaseFactory:
    """Creates uniquely named empty databases on one backend and drops them at the end."""

    backend: str
    tmp_path: Path
    created: list[str] = field(default_factory=list)

    def new(self, label: str = "db", *, with_cell0: bool = False) -> str:
        """A new empty database's URL; ``with_cell0`` also creates its ``_cell0`` twin,
        the database map_cell0 derives from it."""
        name = f"cellctl_t_{label}_{uuid.uuid4().hex[:10]}"
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp_path / (name + '.sqlite')}"
        for db in [name, f"{name}_cell0"] if with_cell0 else [name]:
            self._admin(f"CREATE DATABASE {db}")
            self.created.append(db)
        server = MYSQL_SERVER if self.backend == "mysql" else POSTGRES_SERVER
        return f"{server}/{name}"

    def _admin(self, statement: str) -> None:
        if self.backend == "mysql":
            engine = sa.create_engine(MYSQL_SERVER)
        else:
            engine = sa.create_engine(POSTGRES_SERVER + "/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(statement)
            conn.commit()
        engine.dispose()

    def drop_all(self) -> None:
        if self.backend == "sqlite":
            return
        for name in self.created:
            force = " WITH (FORCE)" if self.backend == "postgresql" else ""
            self._admin(f"DROP DATABASE IF EXISTS {name}{force}")


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    require_server(request.param)
    return request.param


@pytest.fixture(params=["sqlite", "mysql"], ids=["sqlite", "mysql"])
def backend_no_pg(request: pytest.FixtureRequest) -> str:
    """SQLite and MariaDB only, for tests where PostgreSQL adds time but no coverage."""
    require_server(request.param)
    return request.param


def _factory(backend: str, tmp_path: Path) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(backend, tmp_path)
    yield factory
    factory.drop_all()


@pytest.fixture
def dbfactory(backend: str, tmp_path: Path) -> Iterator[DatabaseFactory]:
    yield from _factory(backend, tmp_path)


@pytest.fixture
def sqlite_factory(tmp_path: Path) -> Iterator[DatabaseFactory]:
    yield from _factory("sqlite", tmp_path)


@pytest.fixture
def mysql_factory(tmp_path: Path) -> Iterator[DatabaseFactory]:
    require_server("mysql")
    yield from _factory("mysql", tmp_path)


@dataclass
class Cloud:
    """An API database and a cell database ([database]) plus a CLI bound to them."""

    factory: DatabaseFactory
    tmp_path: Path
    api_url: str
    cell_url: str
    transport_url: str = "memory:///"
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def new(cls, factory: DatabaseFactory, tmp_path: Path) -> Cloud:
        """Fresh databases from ``factory``: the API one and cell1 (with its cell0)."""
        return cls(factory, tmp_path, factory.new("api"), factory.new("cell1", with_cell0=True))

    @property
    def env(self) -> dict[str, str]:
        return {
            # oslo.config's default search looks in ~/.nova and ~ too
            "HOME": str(self.tmp_path / "home"),
            "CELLCTL_STATE_DIR": str(self.tmp_path / "state"),
            "CELLCTL_API_DATABASE_CONNECTION": self.api_url,
            "CELLCTL_DATABASE_CONNECTION": self.cell_url,
            "CELLCTL_TRANSPORT_URL": self.transport_url,
            **self.extra_env,
        }

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner(env={**self.env, **(env or {})})
        result = runner.invoke(main, list(args), catch_exceptions=False)
        return result

    def ok(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    def rows(self, url: str, table: str, order_by: str = "id") -> list[dict[str, Any]]:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return [dict(r._mapping) for r in
                        conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order_by}"))]
        finally:
            engine.dispose()

    def api_rows(self, table: str, order_by: str = "id") -> list[dict[str, Any]]:
        return self.rows(self.api_url, table, order_by)

    def execute(self, url: str, statement: str, params: Any = None) -> None:
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(statement), params or {})
        finally:
            engine.dispose()

    def synced(self) -> Cloud:
        """Create both schemas."""
        self.ok("api_db", "sync")
        self.ok("db", "sync")
        return self


@pytest.fixture
def cloud(dbfactory: DatabaseFactory, tmp_path: Path) -> Cloud:
    return Cloud.new(dbfactory, tmp_path)


@pytest.fixture
def any_cloud(dbfactory: DatabaseFactory, tmp_path: Path) -> Cloud:
    """What ``cloud`` is (every backend), for modules whose own ``cloud`` is ``cloud_no_pg``."""
    return Cloud.new(dbfactory, tmp_path)


@pytest.fixture
def sqlite_cloud(sqlite_factory: DatabaseFactory, tmp_path: Path) -> Cloud:
    return Cloud.new(sqlite_factory, tmp_path)


@pytest.fixture
def make_cloud(tmp_path: Path) -> Callable[[DatabaseFactory], Cloud]:
    return lambda factory: Cloud.new(factory, tmp_path)


# --- Throwaway servers (health tests; reusable) -------------------------------
# A private mariadbd a test may kill or freeze (never the shared one on 3306).
# Installed and started on first use in a test session (~3 s), shared by the
# session's tests; each test gets it running again. See tests/servers.py.


@pytest.fixture(scope="session")
def _throwaway_mariadb_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from servers import ThrowawayMariaDB

    missing = ThrowawayMariaDB.missing_binaries()
    if missing:
        unavailable("throwaway MariaDB", f"{', '.join(missing)} not installed")
    server = ThrowawayMariaDB(tmp_path_factory.mktemp("throwaway-mariadb"))
    try:
        server.install()
        server.start()
    except Exception as exc:
        server.shutdown()
        unavailable("throwaway MariaDB", exc)
    yield server
    server.shutdown()


@pytest.fixture
def throwaway_mariadb(_throwaway_mariadb_session: Any) -> Iterator[Any]:
    """A running ThrowawayMariaDB (tests.servers); kill() or freeze() it freely."""
    _throwaway_mariadb_session.ensure_running()
    yield _throwaway_mariadb_session
    _throwaway_mariadb_session.thaw()


# --- memcached and ZooKeeper (service group drivers mc and zk) ---------------
# The shared servers (Debian's memcached on 11211, zookeeperd on 2181) are only
# read and written under each test's own keys / znode prefix; a test that needs
# one down or frozen starts its own (ThrowawayMemcached) or uses a dead port.

MEMCACHED_SERVER = os.environ.get("CELLCTL_TEST_MEMCACHED", "127.0.0.1:11211")
ZOOKEEPER_SERVER = os.environ.get("CELLCTL_TEST_ZOOKEEPER", "127.0.0.1:2181")


def _tcp_check(address: str) -> str | None:
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), 3):
            return None
    except OSError as exc:
        return str(exc)


@pytest.fixture
def memcached_server() -> str:
    """host:port of the shared memcached (skips locally, fails in CI, when down)."""
    why = _tcp_check(MEMCACHED_SERVER)
    if why:
        unavailable(f"memcached {MEMCACHED_SERVER}", why)
    return MEMCACHED_SERVER


@pytest.fixture
def zookeeper_server() -> str:
    """host:port of the shared ZooKeeper (skips locally, fails in CI, when down)."""
    why = _tcp_check(ZOOKEEPER_SERVER)
    if why:
        unavailable(f"ZooKeeper {ZOOKEEPER_SERVER}", why)
    return ZOOKEEPER_SERVER


@pytest.fixture
def throwaway_memcached() -> Iterator[Callable[[], Any]]:
    """Starts private memcached servers (tests.servers.ThrowawayMemcached); all are
    killed at the end."""
    from servers import ThrowawayMemcached

    if ThrowawayMemcached.binary() is None:
        unavailable("throwaway memcached", "memcached is not installed")
    started: list[Any] = []

    def start() -> Any:
        server = ThrowawayMemcached().start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def throwaway_zookeeper(tmp_path: Path) -> Iterator[Any]:
    """A private ZooKeeper (tests.servers.ThrowawayZooKeeper), killed at the end."""
    from servers import ThrowawayZooKeeper

    missing = ThrowawayZooKeeper.missing()
    if missing:
        unavailable("throwaway ZooKeeper", missing)
    server = ThrowawayZooKeeper(tmp_path / "zookeeper")
    try:
        server.start()
    except Exception as exc:
        server.kill()
        unavailable("throwaway ZooKeeper", exc)
    yield server
    server.kill()


@pytest.fixture
def zk_prefix(zookeeper_server: str) -> Iterator[str]:
    """A fresh sg_prefix znode path of this test's own, deleted afterwards."""
    from kazoo.client import KazooClient

    prefix = f"/cellctl-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    zk = KazooClient(hosts=zookeeper_server)
    zk.start(timeout=10)
    try:
        zk.delete(prefix, recursive=True)
    except Exception:
        pass
    finally:
        zk.stop()
        zk.close()


# --- instance mapping tests (map_instances, verify_instance) ---------------


@pytest.fixture
def cloud_no_pg(backend_no_pg: str, tmp_path: Path) -> Iterator[Cloud]:
    """A Cloud on SQLite and on MariaDB only."""
    for factory in _factory(backend_no_pg, tmp_path):
        yield Cloud.new(factory, tmp_path)


# --- a real 3-node MariaDB Galera cluster (tests/galera.py), marker `galera` ---------
# Started once per test session on its own ports, data directories and tmpdirs
# under a fresh /tmp directory (about 20 s); every test gets it whole and synced.
# All galera tests run on one xdist worker (xdist_group "galera", --dist loadgroup),
# so a session starts one cluster, not one per worker.


@pytest.fixture(scope="session")
def _galera_session() -> Iterator[Any]:
    import tempfile

    from galera import GaleraCluster, missing_prerequisites

    missing = missing_prerequisites()
    if missing:
        unavailable("Galera cluster", f"not installed: {', '.join(missing)}")
    cluster = GaleraCluster(Path(tempfile.mkdtemp(prefix="cellctl-galera-")))
    try:
        cluster.start()
    except Exception as exc:
        detail = str(exc)
        cluster.shutdown()
        unavailable("Galera cluster", detail)
    yield cluster
    cluster.shutdown()


@pytest.fixture
def galera(_galera_session: Any) -> Any:
    """The running GaleraCluster, all three nodes Synced; kill or restart nodes freely."""
    _galera_session.ensure_all_running()
    return _galera_session


@pytest.fixture
def galera_factory(galera: Any) -> Iterator[Any]:
    from galera import GaleraFactory

    factory = GaleraFactory(galera)
    yield factory
    galera.ensure_all_running()
    factory.drop_all()


# --- side by side with the real nova-manage (tests/nova_env.py, tests/nova_support.py) ---
from nova_env import nova_schema, nova_venv_path  # noqa: E402, F401
from nova_support import side_by_side  # noqa: E402, F401
