"""Servers of the tests' own, for cells that die, freeze or never answer.

The shared MariaDB, PostgreSQL and RabbitMQ servers are never stopped: a test
that needs a server to go away during a run uses a private ``mariadbd``
(``ThrowawayMariaDB``: its own datadir and free port, installed once per test
session and started only when a test asks for it), and a test that needs a
host that never answers uses a local socket (``black_hole``, ``silent_port``,
``closed_port``); only 127.0.0.0/8 traffic is involved.

Use the ``throwaway_mariadb`` fixture (conftest.py) rather than the class.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

# --skip-grant-tables: any user and password get in, so URLs can carry a
# password that tests then look for in the output.
PASSWORD = "thr0waway-secret"

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def wait_stopped(pid: int, timeout: float = 10) -> None:
    """Until every thread of ``pid`` is stopped (SIGSTOP reaches a busy thread a little
    later: a JVM may answer one more request meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                states.append(task.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0])
        if states and all(state in ("T", "t") for state in states):
            return
        time.sleep(0.01)
    raise RuntimeError(f"process {pid} did not stop")


class ServerProcess:
    """A server process of the tests' own, which a test may kill (SIGKILL: its port then
    refuses connections) or freeze (SIGSTOP: the kernel still accepts connections,
    nothing answers) and thaw."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.frozen = False

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.kill()
            self.process.wait(30)

    def freeze(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGSTOP)
            self.frozen = True
            wait_stopped(self.process.pid)

    def thaw(self) -> None:
        if self.frozen and self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.frozen = False


class ThrowawayMariaDB(ServerProcess):
    """A private mariadbd that tests may kill, freeze and restart."""

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = base
        self.datadir = base / "data"
        # Its own tmpdir: a mariadbd deletes every "#sql*" file in its tmpdir when it
        # starts, which with the default /tmp are the shared server's live temporary
        # tables (its queries then fail with "Error on delete of '/tmp/#sql-temptable...'").
        self.tmpdir = base / "tmp"
        self.port = free_port()

    @staticmethod
    def missing_binaries() -> list[str]:
        return [b for b in ("mariadbd", "mariadb-install-db")
                if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]

    def install(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.tmpdir.mkdir(exist_ok=True)
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
             f"--tmpdir={self.tmpdir}",
             "--auth-root-authentication-method=normal", "--skip-test-db", *self._user()],
            check=True, capture_output=True, timeout=120,
        )

    def start(self) -> None:
        binary = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        log = open(self.base / "server.log", "ab")  # noqa: SIM115 (kept open by the server)
        self.process = subprocess.Popen(
            [binary, "--no-defaults", f"--datadir={self.datadir}", f"--tmpdir={self.tmpdir}",
             f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--socket={self.base / 'sock'}",
             f"--pid-file={self.base / 'pid'}", "--skip-grant-tables", "--skip-log-bin",
             "--innodb-buffer-pool-size=16M", *self._user()],
            stdout=log, stderr=log,
        )
        deadline = time.monotonic() + 60
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"throwaway mariadbd did not start; see {self.base}/server.log")
            time.sleep(0.05)

    def ensure_running(self) -> None:
        self.thaw()
        if self.process is None or self.process.poll() is not None:
            self.start()


    def shutdown(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.thaw()
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str, password: str = PASSWORD) -> str:
        return f"mysql+pymysql://root:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        engine = sa.create_engine(f"mysql+pymysql://root@127.0.0.1:{self.port}")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        finally:
            engine.dispose()
        return self.url(name)

    @staticmethod
    def _user() -> list[str]:
        # mariadbd refuses to run as root unless told to.
        return ["--user=root"] if os.geteuid() == 0 else []


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A port that behaves like an unroutable host: connection attempts hang.

    A listener with a one-slot accept queue that nobody accepts from, filled
    by one connection: the kernel then drops every further SYN.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port)):
            yield port


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (in the kernel) and never sends a byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port held (bound, not listening) so nothing else takes it: connections are refused."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield int(holder.getsockname()[1])


class ThrowawayMemcached(ServerProcess):
    """A private memcached on its own free port that a test may kill or freeze."""

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @staticmethod
    def binary() -> str | None:
        return shutil.which("memcached") or (
            "/usr/bin/memcached" if Path("/usr/bin/memcached").exists() else None)

    def start(self) -> ThrowawayMemcached:
        binary = self.binary()
        if binary is None:
            raise RuntimeError("memcached is not installed")
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.process = subprocess.Popen(
            [binary, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "16", *user],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"throwaway memcached on port {self.port} did not start")
            time.sleep(0.02)
        return self


class ThrowawayZooKeeper(ServerProcess):
    """A private ZooKeeper (Debian's zookeeper jar) on its own port and data dir."""

    JAR = Path("/usr/share/java/zookeeper.jar")
    CONF_DIR = Path("/etc/zookeeper/conf")  # log4j.properties

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = base
        self.port = free_port()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def missing(cls) -> str | None:
        if shutil.which("java") is None:
            return "java is not installed"
        return None if cls.JAR.exists() else f"{cls.JAR} is missing (zookeeperd)"

    def start(self) -> ThrowawayZooKeeper:
        self.base.mkdir(parents=True, exist_ok=True)
        config = self.base / "zoo.cfg"
        config.write_text(f"tickTime=2000\ndataDir={self.base / 'data'}\nclientPort={self.port}\n"
                          "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                          "maxClientCnxns=0\n")
        log = open(self.base / "server.log", "ab")  # noqa: SIM115 (kept open by the server)
        self.process = subprocess.Popen(
            ["java", "-Xmx64m", "-cp", f"{self.CONF_DIR}:{self.JAR}",
             f"-Dzookeeper.log.dir={self.base}", "-Dzookeeper.root.logger=INFO,CONSOLE",
             "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(config)],
            stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while not self._serving():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"throwaway ZooKeeper did not start; see {self.base}")
            time.sleep(0.1)
        return self

    def _serving(self) -> bool:
        """The port is open before the server takes sessions; ``srvr`` answers after."""
        with contextlib.suppress(OSError), socket.create_connection(
                ("127.0.0.1", self.port), 1) as sock:
            sock.sendall(b"srvr")
            return b"Mode:" in sock.recv(4096)
        return False




def run_frozen_after_probe(monkeypatch: Any, server: ServerProcess,
                           command: Callable[[], T]) -> tuple[T | None, float, bool]:
    """Run ``command`` in-process with ``server`` stopped (SIGSTOP) right after the cells'
    probe has answered, so the command's reads go to an open connection that never
    answers: only the read timeout (shortened from 60 s to 2 s) gives up on it.

    In-process is the only way to stop the server at that point; a worker thread
    with a time limit keeps a hang from hanging the suite. Returns (what ``command``
    returned, or None if it did not finish; seconds until it finished or the limit;
    whether the server was frozen).
    """
    import cellctl.cells.reach as across_cells
    import cellctl.cells.refs as cell_refs

    probe = across_cells.run_bounded
    frozen: list[bool] = []

    def probe_then_freeze(jobs: Any, timeout: float) -> Any:
        outcomes = probe(jobs, timeout)
        server.freeze()
        frozen.append(True)
        return outcomes

    monkeypatch.setattr(across_cells, "run_bounded", probe_then_freeze)
    monkeypatch.setattr(cell_refs, "STALLED_SERVER_TIMEOUT", 2.0)
    outcome: list[T] = []
    worker = threading.Thread(target=lambda: outcome.append(command()), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(30)
    elapsed = time.monotonic() - started
    server.thaw()  # lets a hung command finish before the caller's assertions
    worker.join(30)
    return (outcome[0] if outcome else None), elapsed, frozen == [True]
