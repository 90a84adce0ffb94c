"""A real 3-node MariaDB Galera cluster on loopback, owned by the test session.

Every node is a private ``mariadbd`` with the Debian ``galera-4`` provider: its
own data directory, tmpdir, socket, pid file and ports (client, group
communication, IST, rsync SST), all picked free on 127.0.0.1 and all under one
base directory, so nothing is shared with the MariaDB on 3306 or with another
test session. Node 1 bootstraps the cluster; nodes 2 and 3 join it with an
rsync state transfer. Tests may SIGKILL a node and start it again: it recovers
its position from InnoDB (``--wsrep-recover``, as the Debian service does) and
rejoins by incremental state transfer.

Use the ``galera`` fixture (conftest.py) rather than the class; it starts the
cluster once per test session (about 15 s) and makes sure every node is up
and synced before each test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from servers import free_port

PROVIDER_PATHS = ("/usr/lib/galera/libgalera_smm.so", "/usr/lib/libgalera_smm.so",
                  "/usr/lib64/galera-4/libgalera_smm.so")
START_TIMEOUT = 180.0  # seconds a node may take to start and reach Synced
CLUSTER_NAME = "cellctl_test_galera"


def provider() -> str | None:
    return next((p for p in PROVIDER_PATHS if Path(p).exists()), None)


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the cluster (Debian package names)."""
    missing = []
    if shutil.which("mariadbd") is None and not Path("/usr/sbin/mariadbd").exists():
        missing.append("mariadb-server (mariadbd)")
    if shutil.which("mariadb-install-db") is None:
        missing.append("mariadb-server (mariadb-install-db)")
    if shutil.which("wsrep_sst_rsync") is None:
        missing.append("mariadb-server (wsrep_sst_rsync)")
    if provider() is None:
        missing.append("galera-4 (libgalera_smm.so)")
    if shutil.which("rsync") is None:
        missing.append("rsync")
    if shutil.which("ss") is None and shutil.which("lsof") is None:
        missing.append("iproute2 (ss) or lsof")
    return missing


@dataclass
class Node:
    """One node: number, directory and ports; ``process`` while it runs."""

    number: int
    base: Path
    port: int = field(default_factory=free_port)
    gcomm_port: int = field(default_factory=free_port)
    ist_port: int = field(default_factory=free_port)
    sst_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket(self) -> Path:
        return self.base / "mysqld.sock"

    @property
    def cnf(self) -> Path:
        return self.base / "my.cnf"

    @property
    def log(self) -> Path:
        return self.base / "error.log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class GaleraCluster:
    """Three Galera nodes on 127.0.0.1; see the module docstring."""

    def __init__(self, base: Path, *, size: int = 3, buffer_pool: str = "64M",
                 flush_log_at_trx_commit: int = 2) -> None:
        self.base = base
        self.nodes = [Node(n, base / f"node{n}") for n in range(1, size + 1)]
        self.buffer_pool = buffer_pool
        self.flush_log_at_trx_commit = flush_log_at_trx_commit
        self.provider = provider() or PROVIDER_PATHS[0]

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Install the nodes' data directories, bootstrap node 1, join the others."""
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)  # the nodes' account must reach its directories
        template = self.base / "template"
        if not template.exists():
            self._install(template)
        for node in self.nodes:
            if not node.datadir.exists():
                node.base.mkdir(parents=True, exist_ok=True)
                (node.base / "tmp").mkdir(exist_ok=True)
                shutil.copytree(template, node.datadir, symlinks=True)
            self._write_cnf(node)
        _chown(self.base)
        self.start_node(1, bootstrap=True)
        self._create_root_tcp(self.nodes[0])
        for node in self.nodes[1:]:
            self.start_node(node.number)

    def _install(self, datadir: Path) -> None:
        tmp = self.base / "install-tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        datadir.mkdir()
        _chown(self.base)
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={datadir}", f"--tmpdir={tmp}",
             "--auth-root-authentication-method=normal", "--skip-test-db", *_user()],
            check=True, capture_output=True, timeout=180,
        )

    def _write_cnf(self, node: Node) -> None:
        members = ",".join(f"127.0.0.1:{n.gcomm_port}" for n in self.nodes)
        options = ";".join([
            f"gmcast.listen_addr=tcp://127.0.0.1:{node.gcomm_port}",
            f"ist.recv_addr=127.0.0.1:{node.ist_port}",
            "gcache.size=128M",
            # A killed node is evicted after seconds, not the default 15 s.
            "evs.suspect_timeout=PT3S", "evs.inactive_timeout=PT6S",
            "evs.install_timeout=PT6S",
        ])
        node.cnf.write_text(f"""\
[mysqld]
datadir                     = {node.datadir}
tmpdir                      = {node.base / 'tmp'}
socket                      = {node.socket}
pid-file                    = {node.base / 'mysqld.pid'}
log-error                   = {node.log}
port                        = {node.port}
bind-address                = 127.0.0.1
skip-name-resolve
character-set-server        = utf8mb4
collation-server            = utf8mb4_general_ci
max_connections             = 300
innodb_buffer_pool_size     = {self.buffer_pool}
innodb_log_file_size        = 48M
innodb_flush_log_at_trx_commit = {self.flush_log_at_trx_commit}
binlog_format               = ROW
default_storage_engine      = InnoDB
innodb_autoinc_lock_mode    = 2
wsrep_on                    = ON
wsrep_provider              = {self.provider}
wsrep_cluster_name          = {CLUSTER_NAME}
wsrep_cluster_address       = gcomm://{members}
wsrep_node_name             = node{node.number}
wsrep_node_address          = 127.0.0.1:{node.gcomm_port}
wsrep_node_incoming_address = 127.0.0.1:{node.port}
wsrep_provider_options      = "{options}"
wsrep_sst_method            = rsync
wsrep_sst_receive_address   = 127.0.0.1:{node.sst_port}
wsrep_slave_threads         = 2
""")

    def start_node(self, number: int, *, bootstrap: bool = False) -> None:
        """Start node ``number`` (bootstrapping a new cluster, or joining) and wait for Synced."""
        node = self.node(number)
        if node.running():
            return
        args = [_mariadbd(), f"--defaults-file={node.cnf}", *_user()]
        if bootstrap:
            _set_safe_to_bootstrap(node)
            args.append("--wsrep-new-cluster")
        position = self._recover_position(node)
        if position:
            args.append(f"--wsrep_start_position={position}")
        with open(node.base / "stdout.log", "ab") as out:
            node.process = subprocess.Popen(args, stdout=out, stderr=out,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.wait_synced(number)

    def _recover_position(self, node: Node) -> str | None:
        """After a crash (grastate seqno -1), the last committed position InnoDB knows."""
        grastate = node.datadir / "grastate.dat"
        if not grastate.exists() or "seqno:   -1" not in grastate.read_text():
            return None
        if not (node.datadir / "ibdata1").exists():
            return None
        recover_log = node.base / "recover.log"
        recover_log.unlink(missing_ok=True)
        subprocess.run([_mariadbd(), f"--defaults-file={node.cnf}", *_user(), "--wsrep-recover",
                        f"--log-error={recover_log}"], capture_output=True, timeout=120,
                       check=False)
        _chown(node.base)
        found = re.findall(r"WSREP: Recovered position: (\S+)", recover_log.read_text())
        return found[-1] if found else None

    def wait_synced(self, number: int, timeout: float = START_TIMEOUT) -> None:
        node = self.node(number)
        deadline = time.monotonic() + timeout
        state: Any = None
        while time.monotonic() < deadline:
            if not node.running():
                raise RuntimeError(f"Galera node {number} exited during start-up:\n"
                                   + self.log_tail(number))
            with contextlib.suppress(pymysql.MySQLError, OSError):
                status = self.status(number)
                state = status.get("wsrep_local_state_comment")
                if state == "Synced" and status.get("wsrep_ready") == "ON":
                    return
            time.sleep(0.2)
        raise RuntimeError(f"Galera node {number} not Synced after {timeout:.0f} s "
                           f"(state {state!r}):\n" + self.log_tail(number))

    def wait_cluster_size(self, number: int, size: int, timeout: float = 60.0) -> None:
        """Wait until node ``number`` sees a primary component of ``size`` nodes."""
        deadline = time.monotonic() + timeout
        status: dict[str, str] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(pymysql.MySQLError, OSError):
                status = self.status(number)
                if (status.get("wsrep_cluster_size") == str(size)
                        and status.get("wsrep_cluster_status") == "Primary"
                        and status.get("wsrep_ready") == "ON"):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"node {number}: cluster size {status.get('wsrep_cluster_size')}, "
                           f"status {status.get('wsrep_cluster_status')}, wanted {size}")

    def kill(self, number: int) -> None:
        """SIGKILL node ``number``: a crash, as a lost machine looks to the others."""
        node = self.node(number)
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGKILL)
            node.process.wait(30)

    def stop_node(self, number: int) -> None:
        node = self.node(number)
        if node.process is not None and node.process.poll() is None:
            node.process.terminate()
            try:
                node.process.wait(120)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(30)

    def ensure_all_running(self) -> None:
        """Every node up and Synced (restarting those a test killed), the cluster whole."""
        if not any(n.running() for n in self.nodes):
            self.start_node(1, bootstrap=True)
        for node in self.nodes:
            if not node.running():
                self.start_node(node.number)
        for node in self.nodes:
            self.wait_synced(node.number)
        self.wait_cluster_size(self.nodes[0].number, len(self.nodes))

    def shutdown(self, *, remove: bool = True) -> None:
        for node in reversed(self.nodes):
            self.stop_node(node.number)
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)

    # --- access ------------------------------------------------------------------

    def node(self, number: int) -> Node:
        return self.nodes[number - 1]

    def log_tail(self, number: int, lines: int = 30) -> str:
        log = self.node(number).log
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) \
            if log.exists() else "(no log)"

    def url(self, number: int, database: str = "", *, user: str = "root",
            password: str = "", port: int | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return (f"mysql+pymysql://{auth}@127.0.0.1:{port or self.node(number).port}/"
                f"{database}")

    @contextlib.contextmanager
    def connect(self, number: int, database: str | None = None) -> Iterator[Any]:
        conn = pymysql.connect(host="127.0.0.1", port=self.node(number).port, user="root",
                               database=database, autocommit=True, connect_timeout=5,
                               read_timeout=120)
        try:
            yield conn
        finally:
            conn.close()

    def sql(self, number: int, statement: str, args: Sequence[Any] | None = None,
            database: str | None = None) -> list[tuple[Any, ...]]:
        with self.connect(number, database) as conn, conn.cursor() as cur:
            cur.execute(statement, args)
            return list(cur.fetchall())

    def status(self, number: int) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.sql(number, "SHOW GLOBAL STATUS LIKE 'wsrep_%'")}

    def set_global(self, variable: str, value: Any) -> None:
        """``SET GLOBAL`` on every running node (wsrep limits are per node)."""
        for node in self.nodes:
            if node.running():
                self.sql(node.number, f"SET GLOBAL {variable} = %s", [value])

    def global_value(self, number: int, variable: str) -> Any:
        return self.sql(number, f"SELECT @@GLOBAL.{variable}")[0][0]

    def _create_root_tcp(self, node: Node) -> None:
        """root@127.0.0.1 without a password (install-db makes only root@localhost, socket)."""
        conn = pymysql.connect(unix_socket=str(node.socket), user="root", autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''")
                cur.execute("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
        finally:
            conn.close()

    # --- per-test databases and users ---------------------------------------------

    def new_database(self, label: str = "db") -> str:
        name = f"cellctl_g_{label}_{uuid.uuid4().hex[:10]}"
        self.sql(1, f"CREATE DATABASE {name}")
        # Another node applies the replicated CREATE a moment later: a test that
        # connects to the new database through it at once would get error 1049.
        self.wait_until_everywhere(f"SHOW DATABASES LIKE '{name}'")
        return name

    def wait_until_everywhere(self, query: str, timeout: float = 30.0) -> None:
        """Wait until ``query`` returns a row on every running node."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while node.running() and not self.sql(node.number, query):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node {node.number}: {query!r} still empty")
                time.sleep(0.05)

    def drop_database(self, name: str) -> None:
        for node in self.nodes:  # through any node that is up
            if node.running():
                with contextlib.suppress(pymysql.MySQLError, OSError):
                    self.sql(node.number, f"DROP DATABASE IF EXISTS {name}")
                    return

    def checksums(self, number: int, database: str, tables: Sequence[str]) -> dict[str, int]:
        listed = ", ".join(f"{database}.{t}" for t in tables)
        return {str(name).split(".", 1)[1]: int(value or 0)
                for name, value in self.sql(number, f"CHECKSUM TABLE {listed} EXTENDED")}


def _mariadbd() -> str:
    return shutil.which("mariadbd") or "/usr/sbin/mariadbd"


def _run_as() -> str | None:
    """The account the nodes run as: ``mysql`` when the tests run as root.

    Not root: the rsync daemon of a state transfer started by root drops to
    ``nobody``, which then cannot write the joiner's data directory.
    """
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("mysql")
    except KeyError:
        return "root"
    return "mysql"


def _user() -> list[str]:
    user = _run_as()
    return [f"--user={user}"] if user else []


def _chown(path: Path) -> None:
    user = _run_as()
    if user and user != "root":
        entry = pwd.getpwnam(user)
        for root, dirs, files in os.walk(path):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in dirs + files:
                os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def _set_safe_to_bootstrap(node: Node) -> None:
    grastate = node.datadir / "grastate.dat"
    if grastate.exists():
        grastate.write_text(grastate.read_text().replace("safe_to_bootstrap: 0",
                                                         "safe_to_bootstrap: 1"))


@dataclass
class GaleraFactory:
    """DatabaseFactory's interface (conftest.py) on the cluster: databases made through
    node 1, URLs through node ``node``; all dropped at the end."""

    cluster: GaleraCluster
    node: int = 1
    backend: str = "mysql"
    created: list[str] = field(default_factory=list)

    def new(self, label: str = "db", *, with_cell0: bool = False) -> str:
        name = self.cluster.new_database(label)
        self.created.append(name)
        if with_cell0:
            self.cluster.sql(1, f"CREATE DATABASE {name}_cell0")
            self.created.append(f"{name}_cell0")
        return self.cluster.url(self.node, name)

    def drop_all(self) -> None:
        for name in self.created:
            self.cluster.drop_database(name)


def via(url: str, port: int) -> str:
    """``url`` with its port replaced: the same database through another node (or a proxy)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(port=port).render_as_string(hide_password=False)
