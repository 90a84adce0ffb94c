"""The mc service group driver against real memcached, side by side with Nova's own client
stack (oslo.cache + dogpile.cache + python-memcached / pymemcache, configured as
nova/cache_utils.py configures them)."""

from __future__ import annotations

import datetime
import pickle
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from cellctl.clock import utcnow
from cellctl.liveness import BackendUnreachable, ServiceRecord, judge
from cellctl.liveness.memcache import (
    CachedValue,
    MemcacheDriver,
    cache_key,
    dumps,
    heartbeat_value,
    loads,
    server_picker,
)
from cellctl.liveness.options import MemcacheOptions

pytestmark = pytest.mark.memcached

BACKENDS = ["dogpile.cache.memcached", "dogpile.cache.pymemcache", "oslo_cache.memcache_pool"]


def nova_region(servers: list[str], backend: str, service_down_time: int = 60,
                backend_expiration_time: int | None = None) -> Any:
    """nova.cache_utils._get_default_cache_region(expiration_time=service_down_time)
    with [cache] enabled, backend and memcache_servers set: Nova's mc driver's client."""
    from oslo_cache import core as cache
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    cache.configure(conf)
    conf([], project="nova", default_config_files=[])
    conf.set_override("enabled", True, group="cache")
    conf.set_override("backend", backend, group="cache")
    conf.set_override("memcache_servers", servers, group="cache")
    if backend_expiration_time is not None:
        conf.set_override("backend_expiration_time", backend_expiration_time, group="cache")
    # _get_default_cache_region: CONF.cache.expiration_time = expiration_time
    conf.set_override("expiration_time", service_down_time, group="cache")
    region = cache.create_region()
    cache.configure_cache_region(conf, region)
    return region


def nova_is_up(region: Any, topic: str, host: str) -> bool:
    """nova MemcachedDriver.is_up: CacheClient.get(key) is not None."""
    from dogpile.cache.api import NO_VALUE

    return region.get(f"{topic}:{host}") is not NO_VALUE


def service(host: str, topic: str = "compute", *, forced_down: bool = False) -> ServiceRecord:
    return ServiceRecord(host=host, binary=f"nova-{topic}", topic=topic, disabled=False,
                         forced_down=forced_down, last_seen_up=None, created_at=None)


def driver(servers: list[str], backend: str = "dogpile.cache.memcached", *,
           down: int = 60, expire: int | None = None, timeout: float = 1.0,
           enabled: bool = True) -> MemcacheDriver:
    return MemcacheDriver(MemcacheOptions(enabled, backend, tuple(servers), expire),
                          down_seconds=down, timeout=timeout)


def unique_hosts(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:10]
    return [f"cmp-{tag}-{i:05d}" for i in range(n)]


# --- the bytes --------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_value_is_byte_identical_to_dogpiles(protocol: int) -> None:
    from dogpile.cache.api import CachedValue as DogpileCachedValue

    when, ct = datetime.datetime(2026, 12, 1, 22, 0, 0, 123456), time.time()
    ours = dumps(CachedValue(when, {"ct": ct, "v": 2}), protocol)
    assert ours == pickle.dumps(DogpileCachedValue(when, {"ct": ct, "v": 2}), protocol)
    back = loads(ours)
    assert back.payload == when and back.metadata == {"ct": ct, "v": 2}


def test_key_is_oslo_caches_sha1_mangled_key() -> None:
    from oslo_cache.core import _sha1_mangle_key

    assert cache_key("compute", "cmp-01") == "ed515d0a807fcec3f8620345c227086a6c9168cc"
    assert cache_key("compute", "h\u00f6st") == _sha1_mangle_key("compute:h\u00f6st")


@pytest.mark.parametrize("bad", [
    pickle.dumps({"ct": 1.0, "v": 2}),  # a dict, not a CachedValue
    pickle.dumps(datetime.UTC),  # a global outside the allow-list
    b"\x80\x05garbage",
    pickle.dumps(CachedValue(1, {"v": 2}), 0)
    .replace(b"cellctl.liveness.memcache", b"dogpile.cache.api"),  # no creation time
])
def test_values_that_are_not_heartbeats_are_refused(bad: bytes) -> None:
    from cellctl.liveness.memcache import NotAHeartbeat

    with pytest.raises(NotAHeartbeat):
        loads(bad)


# --- interoperation with Nova's client, both ways ---------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_nova_heartbeat_reads_up_then_down_after_service_down_time(
        memcached_server: str, backend: str) -> None:
    host, = unique_hosts(1)
    region = nova_region([memcached_server], backend, service_down_time=60)
    region.set(f"compute:{host}", utcnow())  # nova MemcachedDriver._report_state
    mc = driver([memcached_server], backend, down=60)
    try:
        now = utcnow()
        assert mc.alive([service(host), service(host, "conductor")], now) == [True, False]
        # 61 s later by the clock: down, as dogpile's ct check makes it for Nova
        later = now + datetime.timedelta(seconds=61)
        assert mc.alive([service(host)], later) == [False]
        assert mc.take_warnings() == []
    finally:
        mc.close()


def test_nova_heartbeat_turns_down_in_real_time_for_both(memcached_server: str) -> None:
    host, = unique_hosts(1)
    region = nova_region([memcached_server], "dogpile.cache.memcached", service_down_time=1)
    region.set(f"compute:{host}", utcnow())
    mc = driver([memcached_server], down=1)
    try:
        assert mc.alive([service(host)], utcnow()) == [True]
        assert nova_is_up(region, "compute", host)
        time.sleep(2.1)
        assert mc.alive([service(host)], utcnow()) == [False]
        assert not nova_is_up(region, "compute", host)
    finally:
        mc.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_cellctl_heartbeat_is_present_for_novas_client(
        memcached_server: str, backend: str) -> None:
    host, = unique_hosts(1)
    mc = driver([memcached_server], backend)
    try:
        before = utcnow()
        mc.report(None, service(host))  # type: ignore[arg-type]  (mc never touches the db)
        region = nova_region([memcached_server], backend, service_down_time=60)
        value = region.get(f"compute:{host}")
        assert isinstance(value, datetime.datetime) and value.tzinfo is None
        assert before <= value <= utcnow()
        assert nova_is_up(region, "compute", host)
        assert not nova_is_up(region, "scheduler", host)
    finally:
        mc.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_wire_bytes_match_novas_client(memcached_server: str, backend: str) -> None:
    """Flags 1, same pickle protocol and length as the value Nova's client stores."""
    from pymemcache.client.base import Client

    nova_host, our_host = unique_hosts(2)
    nova_region([memcached_server], backend).set(f"compute:{nova_host}", utcnow())
    mc = driver([memcached_server], backend)
    mc.report(None, service(our_host))  # type: ignore[arg-type]
    mc.close()
    raw = Client(memcached_server)
    try:
        nova_value, nova_flags = _raw(raw, cache_key("compute", nova_host))
        our_value, our_flags = _raw(raw, cache_key("compute", our_host))
    finally:
        raw.close()
    assert nova_flags == our_flags == 1
    assert nova_value[:2] == our_value[:2]  # b"\x80\x05" (pymemcache) or b"cc" (protocol 0)
    assert _shape(nova_value) == _shape(our_value)


def _shape(value: bytes) -> list[tuple[str, Any]]:
    """A pickle's opcodes with the globals they name (not the varying time values)."""
    import pickletools

    return [(op.name, arg if "GLOBAL" in op.name or arg in ("ct", "v", "latin1") else None)
            for op, arg, _ in pickletools.genops(value)]


def _raw(client: Any, key: str) -> tuple[bytes, int]:
    client.sock or client._connect()
    client.sock.sendall(f"get {key}\r\n".encode())
    data = b""
    while not data.endswith(b"END\r\n"):
        data += client.sock.recv(65536)
    header, rest = data.split(b"\r\n", 1)
    _, _, flags, length = header.split()
    return rest[: int(length)], int(flags)


@pytest.mark.parametrize("backend", ["dogpile.cache.memcached", "dogpile.cache.pymemcache"])
def test_several_servers_same_placement_as_novas_client(
        throwaway_memcached: Any, backend: str) -> None:
    servers = [throwaway_memcached().address for _ in range(3)]
    hosts = unique_hosts(60)
    region = nova_region(servers, backend)
    for host in hosts:
        region.set(f"compute:{host}", utcnow())
    # each key is on exactly one server, the one cellctl picks
    from pymemcache.client.base import Client

    pick = server_picker(backend, servers)
    per_server = []
    for index, address in enumerate(servers):
        client = Client(address)
        keys = [cache_key("compute", h) for h in hosts]
        held = set(client.get_many(keys))
        client.close()
        per_server.append(held)
        assert held == {k for k in keys if pick(k) == index}
    assert all(per_server), "60 keys over 3 servers: each server holds some"
    mc = driver(servers, backend)
    try:
        assert mc.alive([service(h) for h in hosts], utcnow()) == [True] * len(hosts)
    finally:
        mc.close()


def test_server_ttl_from_backend_expiration_time(memcached_server: str) -> None:
    host, = unique_hosts(1)
    mc = driver([memcached_server], down=60, expire=1)
    try:
        mc.report(None, service(host))  # type: ignore[arg-type]
        assert mc.alive([service(host)], utcnow()) == [True]
        time.sleep(3.2)  # memcached expires it (its clock ticks once a second) though ct is recent
        assert mc.alive([service(host)], utcnow()) == [False]
    finally:
        mc.close()


def test_batches_many_hosts_in_few_requests(memcached_server: str) -> None:
    hosts = unique_hosts(2500)
    mc = driver([memcached_server])
    try:
        for host in hosts[::2]:
            mc.report(None, service(host))  # type: ignore[arg-type]
        client = mc._acquire(0)  # the pooled connection alive() will use
        mc._release(0, client)
        calls = []
        original = client.get_many
        client.get_many = lambda keys: calls.append(len(keys)) or original(keys)
        verdicts = mc.alive([service(h) for h in hosts], utcnow())
        assert verdicts == [i % 2 == 0 for i in range(len(hosts))]
        assert calls == [1000, 1000, 500]
    finally:
        mc.close()


# --- never executes what it reads ---------------------------------------------


class _Hostile:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


@pytest.mark.parametrize("protocol", [0, 5])
def test_hostile_pickle_is_reported_never_run(
        memcached_server: str, tmp_path: Path, protocol: int) -> None:
    from pymemcache.client.base import Client

    proof = tmp_path / "pwned"
    payload = pickle.dumps(_Hostile(str(proof)), protocol)
    pickle.loads(payload).close()  # the payload works: unpickling creates the file
    assert proof.exists()
    proof.unlink()
    bad, good = unique_hosts(2)
    raw = Client(memcached_server)
    raw.set(cache_key("compute", bad), payload, flags=1, noreply=False)
    raw.close()
    mc = driver([memcached_server])
    try:
        mc.report(None, service(good))  # type: ignore[arg-type]
        assert mc.alive([service(bad), service(good)], utcnow()) == [None, True]
    finally:
        mc.close()
    assert not proof.exists()
    (warning,) = mc.take_warnings()
    assert f"compute:{bad}" in warning and "io.open" in warning and good not in warning


def test_value_of_another_client_is_unknown(memcached_server: str) -> None:
    from pymemcache.client.base import Client

    host, = unique_hosts(1)
    raw = Client(memcached_server)
    raw.set(cache_key("compute", host), b"2026-12-01T22:00:00", flags=0, noreply=False)
    raw.close()
    mc = driver([memcached_server])
    assert mc.alive([service(host)], utcnow()) == [None]
    assert "flags 0" in mc.take_warnings()[0]


# --- an unreachable backend: unknown, never down, in bounded time -------------


def _assert_unreachable(mc: MemcacheDriver, budget: float) -> None:
    hosts = unique_hosts(3)
    start = time.monotonic()
    with pytest.raises(BackendUnreachable) as caught:
        mc.alive([service(h) for h in hosts], utcnow())
    assert "memcached 127.0.0.1:" in str(caught.value)
    # the server is not asked again by the same driver: judged unknown at once
    again = time.monotonic()
    verdicts, warning = judge(
        mc, [service(h) for h in hosts] + [service("x", forced_down=True)], utcnow())
    assert time.monotonic() - again < 0.5
    assert verdicts == [None, None, None, False]
    assert warning is not None and warning.startswith("memcached 127.0.0.1:")
    assert warning.endswith("liveness unknown")
    assert time.monotonic() - start < budget


def test_closed_port_is_unknown() -> None:
    from servers import closed_port

    with closed_port() as port:
        _assert_unreachable(driver([f"127.0.0.1:{port}"], timeout=1.0), 3.5)


def test_black_holed_port_is_unknown_in_bounded_time() -> None:
    from servers import black_hole

    with black_hole() as port:
        _assert_unreachable(driver([f"127.0.0.1:{port}"], timeout=1.0), 3.5)


def test_silent_port_is_unknown_in_bounded_time() -> None:
    from servers import silent_port

    with silent_port() as port:
        _assert_unreachable(driver([f"127.0.0.1:{port}"], timeout=1.0), 3.5)


def test_killed_and_frozen_memcached(throwaway_memcached: Any) -> None:
    server = throwaway_memcached()
    host, = unique_hosts(1)
    mc = driver([server.address], timeout=1.0)
    mc.report(None, service(host))  # type: ignore[arg-type]
    assert mc.alive([service(host)], utcnow()) == [True]
    server.freeze()
    try:
        _assert_unreachable(mc, 3.5)
    finally:
        server.thaw()
    mc.close()
    mc = driver([server.address], timeout=1.0)  # the next command
    assert mc.alive([service(host)], utcnow()) == [True]
    server.kill()
    _assert_unreachable(mc, 3.5)


def test_one_dead_server_of_two_leaves_only_its_hosts_unknown(throwaway_memcached: Any) -> None:
    live, dead = throwaway_memcached(), throwaway_memcached()
    servers = [live.address, dead.address]
    hosts = unique_hosts(40)
    mc = driver(servers, timeout=1.0)
    for host in hosts:
        mc.report(None, service(host))  # type: ignore[arg-type]
    dead.kill()
    pick = server_picker("dogpile.cache.memcached", servers)
    verdicts = mc.alive([service(h) for h in hosts], utcnow())
    mc.close()
    assert verdicts == [True if pick(cache_key("compute", h)) == 0 else None for h in hosts]
    assert None in verdicts and True in verdicts
    (warning,) = mc.take_warnings()
    assert dead.address in warning and live.address not in warning


@pytest.mark.parametrize(("options", "why"), [
    ({"enabled": False}, "[cache] enabled is false"),
    ({"backend": "dogpile.cache.null"}, "not a memcached backend"),
])
def test_no_memcached_client_is_unknown(memcached_server: str, options: dict[str, Any],
                                        why: str) -> None:
    mc = driver([memcached_server], **{k: v for k, v in options.items() if k == "enabled"})
    if "backend" in options:
        mc = driver([memcached_server], options["backend"])
    verdicts, warning = judge(mc, [service("h1")], utcnow())
    assert verdicts == [None]
    assert warning is not None and why in warning


def test_heartbeat_value_is_a_naive_utc_now() -> None:
    value = loads(heartbeat_value(0))
    assert value.payload.tzinfo is None
    assert abs((utcnow() - value.payload).total_seconds()) < 5
    assert abs(value.metadata["ct"] - time.time()) < 5 and value.metadata["v"] == 2


# --- chosen as Nova chooses it ----------------------------------------------------


def _settings(tmp_path: Path, text: str) -> Any:
    from cellctl.settings import resolve

    conf = tmp_path / "nova.conf"
    conf.write_text(text)
    return resolve(config_files=[str(conf)], environ={"CELLCTL_STATE_DIR": str(tmp_path)})


def test_service_group_picks_mc_with_novas_down_time_raise(tmp_path: Path,
                                                           memcached_server: str) -> None:
    from cellctl.liveness import service_group

    settings = _settings(tmp_path, (
        "[DEFAULT]\nservicegroup_driver = mc\nservice_down_time = 5\nreport_interval = 10\n"
        f"[cache]\nenabled = True\nbackend = oslo_cache.memcache_pool\n"
        f"memcache_servers = {memcached_server}\nbackend_expiration_time = 120\n"))
    mc = service_group(settings)
    assert isinstance(mc, MemcacheDriver)
    assert mc.down_seconds == 25  # service_down_time <= report_interval: 2.5 x 10
    assert mc.options == MemcacheOptions(True, "oslo_cache.memcache_pool",
                                         (memcached_server,), 120)
    host, = unique_hosts(1)
    mc.report(None, service(host))  # type: ignore[arg-type]
    now = utcnow()
    assert mc.alive([service(host)], now + datetime.timedelta(seconds=24)) == [True]
    assert mc.alive([service(host)], now + datetime.timedelta(seconds=27)) == [False]
    mc.close()


@pytest.mark.parametrize(("text", "message"), [
    ("[DEFAULT]\nservicegroup_driver = redis\n", "servicegroup_driver"),
    ("[DEFAULT]\nservicegroup_driver = mc\nreport_interval = soon\n", "report_interval"),
    ("[DEFAULT]\nservicegroup_driver = mc\n[cache]\nenabled = maybe\n", "enabled"),
    ("[DEFAULT]\nservicegroup_driver = mc\n[cache]\nenabled = true\n"
     "backend_expiration_time = 0\n", "backend_expiration_time"),
    ("[DEFAULT]\nservicegroup_driver = zk\n[zookeeper]\nsg_prefix = relative\n",
     "sg_prefix must be an absolute znode path"),
])
def test_bad_service_group_options_are_config_errors(tmp_path: Path, text: str,
                                                     message: str) -> None:
    from cellctl.errors import ConfigError
    from cellctl.liveness import service_group

    with pytest.raises(ConfigError, match=message):  # from the settings or the driver
        service_group(_settings(tmp_path, text))
