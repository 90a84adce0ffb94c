"""The zk service group driver against the real ZooKeeper (Debian's zookeeperd 3.8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cellctl.clock import utcnow
from cellctl.liveness import BackendUnreachable, ServiceRecord, judge
from cellctl.liveness.options import ZooKeeperOptions
from cellctl.liveness.zookeeper import ZooKeeperDriver

pytestmark = pytest.mark.zookeeper


def service(host: str, topic: str = "compute", *, forced_down: bool = False) -> ServiceRecord:
    return ServiceRecord(host=host, binary=f"nova-{topic}", topic=topic, disabled=False,
                         forced_down=forced_down, last_seen_up=None, created_at=None)


def zk_driver(address: str, prefix: str, *, timeout: float = 2.0,
              recv_timeout_ms: int = 4000) -> ZooKeeperDriver:
    return ZooKeeperDriver(ZooKeeperOptions(address, prefix, recv_timeout_ms), timeout=timeout)


@pytest.fixture
def raw_zk(zookeeper_server: str) -> Iterator[Any]:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=zookeeper_server)
    zk.start(timeout=10)
    yield zk
    zk.stop()
    zk.close()


def test_heartbeat_joins_as_nova_12_did(zookeeper_server: str, zk_prefix: str,
                                        raw_zk: Any) -> None:
    drv = zk_driver(zookeeper_server, zk_prefix)
    try:
        drv.report(None, service("cmp-1"))  # type: ignore[arg-type]
        drv.report(None, service("cmp-1"))  # type: ignore[arg-type]  (a second beat: same child)
        data, _ = raw_zk.get(f"{zk_prefix}/compute/cmp-1")
        assert data == b"ZKMembers"
        children = raw_zk.get_children(f"{zk_prefix}/compute/cmp-1")
        assert children == [str(os.getpid())]
        _, stat = raw_zk.get(f"{zk_prefix}/compute/cmp-1/{os.getpid()}")
        assert stat.ephemeralOwner == drv._zk.client_id[0]
    finally:
        drv.close()
    # a stopped heartbeat ends its session: the child goes at once
    assert raw_zk.get_children(f"{zk_prefix}/compute/cmp-1") == []


@pytest.mark.parametrize("multi_read", [None, False], ids=["multiRead", "pipelined gets"])
def test_alive_reads_nova_layout(zookeeper_server: str, zk_prefix: str, raw_zk: Any,
                                 multi_read: bool | None) -> None:
    # Laid out by hand as evzookeeper's Membership laid it out for Nova 12
    raw_zk.create(f"{zk_prefix}/compute/up-1", b"ZKMembers", makepath=True)
    raw_zk.create(f"{zk_prefix}/compute/up-1/4242", b"", ephemeral=True)
    raw_zk.create(f"{zk_prefix}/compute/up-1/4343", b"", ephemeral=True)
    raw_zk.create(f"{zk_prefix}/compute/no-process", b"ZKMembers", makepath=True)
    raw_zk.create(f"{zk_prefix}/compute/other-data", b"not members", makepath=True)
    raw_zk.create(f"{zk_prefix}/compute/other-data/1", b"", ephemeral=True)
    raw_zk.create(f"{zk_prefix}/conductor/up-1", b"ZKMembers", makepath=True)
    raw_zk.create(f"{zk_prefix}/conductor/up-1/7", b"", ephemeral=True)
    drv = zk_driver(zookeeper_server, zk_prefix)
    drv._multi_read = multi_read  # False: as with a server older than 3.6
    try:
        asked = [service("up-1"), service("no-process"), service("other-data"),
                 service("never-joined"), service("up-1", "conductor"),
                 service("up-1", "scheduler")]
        assert drv.alive(asked, utcnow()) == [True, False, False, False, True, False]
        assert judge(drv, [service("up-1", forced_down=True)], utcnow()) == ([False], None)
    finally:
        drv.close()


def test_batched_reads_and_no_listing(zookeeper_server: str, zk_prefix: str,
                                      raw_zk: Any, monkeypatch: Any) -> None:
    from cellctl.liveness import zookeeper

    monkeypatch.setattr(zookeeper, "MULTI_READ_BATCH", 64)
    hosts = [f"h{i:04d}" for i in range(300)]
    for host in hosts[:200]:
        raw_zk.create(f"{zk_prefix}/compute/{host}", b"ZKMembers", makepath=True)
    for host in hosts[:100]:
        raw_zk.create(f"{zk_prefix}/compute/{host}/1", b"", ephemeral=True)
    raw_zk.delete(f"{zk_prefix}/compute/h0150")  # gone: down
    drv = zk_driver(zookeeper_server, zk_prefix)
    try:
        zk = drv._client()
        sent: list[tuple[int, int]] = []  # (request type, znodes asked)
        original = zk._call

        def counted(request: Any, async_result: Any) -> Any:
            sent.append((request.type, len(getattr(request, "paths", [None]))))
            return original(request, async_result)
        zk._call = counted
        verdicts = drv.alive([service(h) for h in hosts], utcnow())
        assert verdicts == [i < 100 for i in range(300)]
        # multiReads of the 300 hosts asked about, 64 a request (those without a znode
        # are error entries): no listing, no request per host
        assert sent == [(22, 64), (22, 64), (22, 64), (22, 64), (22, 44)]
    finally:
        drv.close()


def test_killed_heartbeat_drops_out_after_its_session_timeout(
        zookeeper_server: str, zk_prefix: str, raw_zk: Any) -> None:
    script = textwrap.dedent(f"""
        import sys, time
        from cellctl.liveness import ServiceRecord
        from cellctl.liveness.options import ZooKeeperOptions
        from cellctl.liveness.zookeeper import ZooKeeperDriver
        drv = ZooKeeperDriver(ZooKeeperOptions({zookeeper_server!r}, {zk_prefix!r}, 4000),
                              timeout=5)
        drv.report(None, ServiceRecord("victim", "nova-compute", "compute", False, False,
                                       None, None))
        print("joined", flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"joined"
        drv = zk_driver(zookeeper_server, zk_prefix)
        assert drv.alive([service("victim")], utcnow()) == [True]
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        killed = time.monotonic()
        # the session outlives the process for up to its timeout (4 s)
        assert drv.alive([service("victim")], utcnow()) == [True]
        while drv.alive([service("victim")], utcnow()) == [True]:
            assert time.monotonic() - killed < 15, "still up 15 s after the kill"
            time.sleep(0.25)
        gone_after = time.monotonic() - killed
        assert 2.0 < gone_after < 15
        drv.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def test_session_expiry_rejoins_on_next_beat(zookeeper_server: str, zk_prefix: str,
                                             raw_zk: Any) -> None:
    drv = zk_driver(zookeeper_server, zk_prefix)
    try:
        drv.report(None, service("cmp-r"))  # type: ignore[arg-type]
        member = f"{zk_prefix}/compute/cmp-r/{os.getpid()}"
        raw_zk.delete(member)  # as a session expiry removes it
        drv.report(None, service("cmp-r"))  # type: ignore[arg-type]
        assert raw_zk.exists(member) is not None
    finally:
        drv.close()


# --- unreachable: unknown, never down, bounded ------------------------------------


def _assert_unreachable(drv: ZooKeeperDriver, budget: float) -> None:
    hosts = [f"u{uuid.uuid4().hex[:6]}" for _ in range(3)]
    start = time.monotonic()
    with pytest.raises(BackendUnreachable) as caught:
        drv.alive([service(h) for h in hosts], utcnow())
    assert "ZooKeeper 127.0.0.1:" in str(caught.value)
    again = time.monotonic()
    verdicts, warning = judge(drv, [service(h) for h in hosts], utcnow())
    assert time.monotonic() - again < 0.5  # one try per command
    assert verdicts == [None, None, None]
    assert warning is not None and warning.startswith("ZooKeeper 127.0.0.1:")
    assert time.monotonic() - start < budget
    drv.close()


def test_closed_port_is_unknown() -> None:
    from servers import closed_port

    with closed_port() as port:
        _assert_unreachable(zk_driver(f"127.0.0.1:{port}", "/servicegroups", timeout=1.0), 5)


def test_black_hole_is_unknown_in_bounded_time() -> None:
    from servers import black_hole

    with black_hole() as port:
        _assert_unreachable(zk_driver(f"127.0.0.1:{port}", "/servicegroups", timeout=1.0), 5)


def test_silent_port_is_unknown_in_bounded_time() -> None:
    from servers import silent_port

    with silent_port() as port:
        _assert_unreachable(zk_driver(f"127.0.0.1:{port}", "/servicegroups", timeout=1.0), 5)


def test_several_addresses_first_dead(zookeeper_server: str, zk_prefix: str,
                                      raw_zk: Any) -> None:
    from servers import closed_port

    raw_zk.create(f"{zk_prefix}/compute/a/1", b"", ephemeral=True, makepath=True)
    raw_zk.set(f"{zk_prefix}/compute/a", b"ZKMembers")
    with closed_port() as port:
        drv = zk_driver(f"127.0.0.1:{port},{zookeeper_server}", zk_prefix, timeout=5.0)
        try:
            assert drv.alive([service("a")], utcnow()) == [True]
        finally:
            drv.close()


def test_unset_address_is_unknown() -> None:
    drv = zk_driver(None, "/servicegroups")  # type: ignore[arg-type]
    verdicts, warning = judge(drv, [service("h")], utcnow())
    assert verdicts == [None]
    assert warning is not None and "[zookeeper] address is not set" in warning


def test_frozen_server_mid_session_is_unknown_in_bounded_time(throwaway_zookeeper: Any) -> None:
    server = throwaway_zookeeper
    drv = zk_driver(server.address, "/servicegroups", timeout=1.5)
    drv.report(None, service("frozen-1"))  # type: ignore[arg-type]
    assert drv.alive([service("frozen-1")], utcnow()) == [True]
    server.freeze()
    try:
        _assert_unreachable(drv, 5)
    finally:
        server.thaw()
