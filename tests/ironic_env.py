"""A real Ironic (bare metal) API for the tests: ironic from PyPI, noauth, fake hardware.

- ``ironic_venv()``: ironic ``IRONIC_VERSION`` in a throwaway virtualenv cached
  under ``~/.cache/cellctl-tests`` by the builder the nova one uses
  (``tests/pypi_venv.py``).
- ``IronicService``: one Ironic on loopback with its own SQLite database, its
  own ports and its own directory: the single-process ``ironic`` (API and the
  conductor of the default group "") plus one ``ironic-conductor`` per extra
  conductor group. Ironic accepts a node in a conductor group only when a live
  conductor serves that group, and a conductor serves one group; they talk
  JSON-RPC (noauth) on loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pypi_venv import PypiVenv, cached_venv

IRONIC_VERSION = "39.0.0"
MICROVERSION = "1.82"


IRONIC = PypiVenv("ironic", IRONIC_VERSION, "ironic", "ironic.command.singleprocess",
                  "CELLCTL_TEST_IRONIC_VENV")


def ironic_venv() -> Path:
    """The cached ironic virtualenv (``CELLCTL_TEST_IRONIC_VENV``: an existing one instead)."""
    return cached_venv(IRONIC)


# --- one running Ironic -----------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_CONF = """[DEFAULT]
host = 127.0.0.1
auth_strategy = noauth
rpc_transport = json-rpc
enabled_hardware_types = fake-hardware
enabled_bios_interfaces = no-bios
enabled_boot_interfaces = fake
enabled_console_interfaces = no-console
enabled_deploy_interfaces = fake
enabled_firmware_interfaces = no-firmware
enabled_inspect_interfaces = no-inspect
enabled_management_interfaces = fake
enabled_network_interfaces = noop
enabled_power_interfaces = fake
enabled_raid_interfaces = no-raid
enabled_rescue_interfaces = no-rescue
enabled_storage_interfaces = noop
enabled_vendor_interfaces = no-vendor
minimum_memory_warning_only = true
hash_ring_reset_interval = 2
use_stderr = false
state_path = {root}/state
[api]
host_ip = 127.0.0.1
port = {api_port}
max_limit = {max_limit}
[conductor]
automated_clean = false
[database]
connection = {database}
[dhcp]
dhcp_provider = none
[json_rpc]
auth_strategy = noauth
host_ip = 127.0.0.1
[oslo_concurrency]
lock_path = {root}/locks
"""


class IronicService:
    """A real Ironic API on loopback: noauth, fake hardware, one conductor per group.

    ``database`` is an SQLAlchemy URL of an empty database it may fill.
    """

    def __init__(self, venv: Path, root: Path, database: str,
                 groups: Sequence[str] = (), *, max_limit: int = 1000) -> None:
        self.venv, self.root, self.database = venv, root, database
        self.max_limit = max_limit  # [api] max_limit: the most nodes a page holds
        self.groups = list(groups)
        self.api_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.rpc_ports = {name: free_port() for name in ["main", *self.groups]}

    def start(self, timeout: float = 120) -> None:
        (self.root / "state").mkdir(parents=True, exist_ok=True)
        (self.root / "locks").mkdir(exist_ok=True)
        main_conf = self.root / "ironic.conf"
        main_conf.write_text(_CONF.format(root=self.root, api_port=self.api_port,
                                          database=self.database, max_limit=self.max_limit))
        done = subprocess.run([str(self.venv / "bin" / "ironic-dbsync"), "--config-file",
                               str(main_conf), "create_schema"],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"ironic-dbsync failed: {done.stderr[-1500:]}")
        for name, port in self.rpc_ports.items():
            extra = self.root / f"{name}.conf"
            lines = ["[DEFAULT]", f"log_file = {self.root}/{name}.log", "[json_rpc]",
                     f"port = {port}"]
            if name != "main":
                lines += ["[conductor]", f"conductor_group = {name}"]
            extra.write_text("\n".join(lines) + "\n")
            exe = "ironic" if name == "main" else "ironic-conductor"
            with open(self.root / f"{name}.out", "ab") as out:
                self.procs[name] = subprocess.Popen(
                    [str(self.venv / "bin" / exe), "--config-file", str(main_conf),
                     "--config-file", str(extra)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True)
        want = {f"127.0.0.1:{port}" for port in self.rpc_ports.values()}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    log = (self.root / f"{name}.log")
                    tail = log.read_text()[-1500:] if log.exists() else ""
                    self.stop()
                    raise RuntimeError(f"ironic {name} exited ({proc.returncode}): {tail}")
            with contextlib.suppress(OSError, ValueError, KeyError):
                conductors = self.get("/v1/conductors?detail=true")["conductors"]
                if want <= {c["hostname"] for c in conductors if c.get("alive")}:
                    time.sleep(3)  # hash_ring_reset_interval: the API sees every group
                    return
            time.sleep(1)
        self.stop()
        raise RuntimeError(f"no Ironic API with every conductor alive at {self.url}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        self.procs.clear()

    # --- the REST API, as an operator's client would call it ---

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "X-OpenStack-Ironic-API-Version": MICROVERSION,
            "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None
        return json.loads(payload) if payload else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def create_node(self, *, uuid: str, conductor_group: str = "", shard: str | None = None,
                    instance_uuid: str | None = None) -> None:
        body: dict[str, Any] = {"uuid": uuid, "driver": "fake-hardware",
                                "conductor_group": conductor_group}
        if shard is not None:
            body["shard"] = shard
        self.request("POST", "/v1/nodes", body)
        if instance_uuid is not None:
            self.request("PATCH", f"/v1/nodes/{uuid}",
                         [{"op": "add", "path": "/instance_uuid", "value": instance_uuid}])


@contextlib.contextmanager
def running_ironic(root: Path, database: str, groups: Sequence[str] = ()
                   ) -> Iterator[IronicService]:
    service = IronicService(ironic_venv(), root, database, groups)
    service.start()
    try:
        yield service
    finally:
        service.stop()


if __name__ == "__main__":
    print(ironic_venv())
