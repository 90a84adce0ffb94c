"""The liveness listings' fast paths against a slow reference, on randomized clouds.

``list_hosts --status`` and ``service list`` read each cell once, streamed, judge
services by the batch (one multi-get / multiRead per batch), unpickle Nova's
heartbeat shape without the unpickler and write JSON without the standard
encoder. Here a reference judges every service on its own, the obvious way,
by Nova's rules (/work/shared/nova-liveness-and-ring-facts.md): the row's
heartbeat for db; one memcached ``get`` per service and the allow-list
unpickler for mc; one ZooKeeper ``get`` per znode for zk; forced down wins;
a backend that cannot be reached judges nothing (unknown). The cloud has every
state planted (up, down, disabled, forced down, never reported, heartbeats
from the future, deleted services, mapped hosts without a service, a dead
cell, values that are not heartbeats, a dead memcached), the batches are made
small so every listing spans several, and both commands must give exactly
the reference's answer.
"""

from __future__ import annotations

import datetime
import json
import pickle
import random
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hostsupport import DEAD_CELL_URL, setup_cells
from servers import closed_port
from test_liveness_cli import mc_conf, zk_conf

from cellctl.clock import utcnow
from cellctl.liveness import memcache
from cellctl.liveness.memcache import NotAHeartbeat, cache_key, dumps, heartbeat_value
from cellctl.tables.cell import services
from cellctl.tables.rows import service_row, topic_for

DOWN = 60  # service_down_time: Nova's default, not configured here
BINARIES = ["nova-compute"] * 6 + ["nova-conductor", "nova-scheduler"]
HEARTBEATS = ["fresh", "stale", "future", "far future", "never, new", "never, old"]
AGES = {"fresh": (0, 40), "stale": (90, 10_000), "future": (-40, 0),
        "far future": (-10_000, -90)}


# The first hosts' compute service in each planted state, whatever the random draws:
# (heartbeat, disabled, forced down, memcached value, znode).
PINNED = {0: ("fresh", False, False, "fresh", "member"),
          1: ("fresh", True, False, "fresh", "member"),
          2: ("fresh", False, True, "fresh", "member"),
          3: ("stale", False, False, "stale", "none"),
          4: ("fresh", False, False, "hostile", "no child")}


def pinned(host: str) -> tuple[str, bool, bool, str, str] | None:
    number = host.rpartition("-")[2]
    return PINNED.get(int(number[1:])) if number[:1] == "h" and number[1:].isdigit() else None


class _RawSerde:
    def serialize(self, key: Any, value: Any) -> tuple[bytes, int]:
        return value, 1

    def deserialize(self, key: Any, value: bytes, flags: int) -> tuple[int, bytes]:
        return flags, value


def plant_cell(cloud: Any, rng: random.Random, tag: str, now: datetime.datetime) -> None:
    """Services of every kind in cell1, and host mappings to cell1 and to a dead cell."""
    rows = []
    for i in range(rng.randint(60, 90)):
        case = "h" if i in PINNED or rng.random() < 0.8 else "H"  # case matters in sorting
        host = f"{tag}-{case}{i:03d}"
        binaries = {rng.choice(BINARIES) for _ in range(rng.choice([1, 1, 1, 2]))}
        for binary in ["nova-compute"] if i in PINNED else binaries:
            beat = rng.choice(HEARTBEATS)
            disabled, forced = rng.random() < 0.25, rng.random() < 0.15
            if i in PINNED:
                beat, disabled, forced = PINNED[i][:3]
            created = now - datetime.timedelta(seconds=20 if beat == "never, new" else 5000)
            row = service_row(host, binary, now=created)
            age = AGES.get(beat)
            row.update(
                last_seen_up=None if age is None
                else now - datetime.timedelta(seconds=rng.randint(*age)),
                disabled=disabled, forced_down=forced,
                disabled_reason=rng.choice([None, "maintenance", "ünïcode"]))
            rows.append(row)
    # deleted services (soft-deleted as Nova deletes: deleted = id), one the only one of its host
    for host in (f"{tag}-h001", f"{tag}-gone"):
        row = service_row(host, "nova-compute", now=now)
        row.update(last_seen_up=now, deleted=1, disabled_reason=None)
        rows.append(row)
    engine = sa.create_engine(cloud.cell_url)
    with engine.begin() as conn:
        conn.execute(services.insert(), rows)
        conn.execute(sa.text("UPDATE services SET deleted = id WHERE deleted = 1"))
    engine.dispose()
    cloud.ok("create_cell", "--name", "dead", "--database_connection", DEAD_CELL_URL,
             "--transport-url", "memory:///dead")
    computes = sorted({r["host"] for r in rows
                       if r["binary"] == "nova-compute" and not r["deleted"]})
    mapped = [h for h in computes if pinned(h) or rng.random() < 0.85] + [
        f"{tag}-gone", f"{tag}-nothing"]
    engine = sa.create_engine(cloud.api_url)
    with engine.begin() as conn:
        ids = dict(conn.execute(sa.text("SELECT name, id FROM cell_mappings")).all())
        conn.execute(sa.text("INSERT INTO host_mappings (cell_id, host) VALUES (:c, :h)"),
                     [{"c": ids["cell1"], "h": h} for h in mapped]
                     + [{"c": ids["dead"], "h": f"{tag}-dead{i}"} for i in range(3)])
    engine.dispose()


def plant_memcached(server: str, live: list[dict[str, Any]], rng: random.Random,
                    now: datetime.datetime) -> None:
    """Per service: a fresh or stale heartbeat of either pickle shape, none, a value of
    another dogpile version, a pickle naming a class outside the allow-list, a value
    that is not a pickle, or Nova's shape with one global renamed."""
    from pymemcache.client.base import Client

    client = Client(server, serde=_RawSerde(), default_noreply=False)
    epoch = now.replace(tzinfo=datetime.UTC).timestamp()
    for service in live:
        key = cache_key(service["topic"], service["host"])
        kind = rng.choice(["fresh", "fresh", "stale", "none", "version", "hostile",
                           "not pickled", "renamed"])
        pin = pinned(service["host"])
        kind = pin[3] if pin else kind
        protocol = rng.choice([0, pickle.HIGHEST_PROTOCOL])
        age = rng.randint(0, 40) if kind != "stale" else rng.randint(90, 5000)
        value = heartbeat_value(protocol, now=now, ct=epoch - age)
        if kind == "none":
            continue
        if kind == "version":
            value = dumps(memcache.CachedValue(now, {"ct": epoch, "v": 1}), protocol)
        elif kind == "hostile":
            value = pickle.dumps(OrderedDict(ct=epoch), protocol=protocol)
        elif kind == "renamed":
            value = value.replace(b"datetime", b"datetimf", 1)
        if kind == "not pickled":
            client.set(key, b"up", flags=0)
        else:
            client.set(key, value)
    client.close()


def plant_zookeeper(zk: Any, prefix: str, live: list[dict[str, Any]],
                    rng: random.Random) -> None:
    """Per service: a member (ZKMembers and a child), a znode without a child, other
    data with a child, or no znode."""
    for service in live:
        path = f"{prefix}/{service['topic']}/{service['host']}"
        kind = rng.choice(["member", "member", "no child", "other data", "none"])
        pin = pinned(service["host"])
        kind = pin[4] if pin else kind
        if kind == "none":
            continue
        zk.create(path, b"not members" if kind == "other data" else b"ZKMembers",
                  makepath=True)
        if kind != "no child":
            zk.create(f"{path}/{rng.randint(1, 99999)}", b"")


def reference_alive(driver: str, service: dict[str, Any], now: datetime.datetime,
                    backend: Any) -> bool | None:
    """One service, judged on its own (forced_down is the caller's)."""
    if driver == "db":
        heartbeat = service["last_seen_up"] or service["created_at"]
        return heartbeat is not None and abs((now - heartbeat).total_seconds()) <= DOWN
    if driver == "mc-dead":
        return None
    if driver == "mc":
        item = backend.get(cache_key(service["topic"], service["host"]))
        if item is None:
            return False
        flags, data = item
        if flags != 1:
            return None
        try:
            value = memcache._unpickle(data)  # the allow-list unpickler alone
        except NotAHeartbeat:
            return None
        if value.metadata.get("v") != 2:
            return False
        epoch = now.replace(tzinfo=datetime.UTC).timestamp()
        return epoch - float(value.metadata["ct"]) <= DOWN
    from kazoo.exceptions import NoNodeError

    try:
        data, stat = backend.get(f"{backend.cellctl_prefix}/{service['topic']}/{service['host']}")
    except NoNodeError:
        return False
    return data == b"ZKMembers" and stat.numChildren > 0


def expected(cloud: Any, driver: str, now: datetime.datetime,
             backend: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(list_hosts --status rows, service list rows) as the reference has them."""
    engine = sa.create_engine(cloud.cell_url)
    with engine.connect() as conn:
        live = [dict(r._mapping) for r in conn.execute(
            sa.select(services).where(services.c.deleted == 0))]
    engine.dispose()
    engine = sa.create_engine(cloud.api_url)
    with engine.connect() as conn:
        mappings = conn.execute(sa.text(
            "SELECT h.host, c.name, c.uuid FROM host_mappings h "
            "JOIN cell_mappings c ON c.id = h.cell_id")).all()
    engine.dispose()
    alive = {}
    for service in live:
        alive[service["id"]] = False if service["forced_down"] else reference_alive(
            driver, service, now, backend)
    listed = []
    for service in sorted(live, key=lambda s: (s["host"], s["binary"])):
        up = alive[service["id"]]
        listed.append({
            "cell_name": "cell1", "cell_uuid": cloud.cell_uuid, "binary": service["binary"],
            "host": service["host"], "status": "disabled" if service["disabled"] else "enabled",
            "state": "unknown" if up is None else "up" if up else "down",
            "forced_down": bool(service["forced_down"]),
            "last_seen_up": service["last_seen_up"].isoformat()
            if service["last_seen_up"] else None,
            "disabled_reason": service["disabled_reason"]})
    computes = {s["host"]: s for s in live if s["binary"] == "nova-compute"}
    hosts = []
    for host, name, cell_uuid in sorted(mappings):
        service = computes.get(host)
        if name == "dead":
            state = "unknown"
        elif service is None:
            state = "no service"
        elif service["forced_down"]:
            state = "forced down"
        elif alive[service["id"]] is None:
            state = "unknown"
        elif not alive[service["id"]]:
            state = "down"
        else:
            state = "disabled" if service["disabled"] else "up"
        hosts.append({"cell_name": name, "cell_uuid": cell_uuid, "hostname": host,
                      "state": state})
    return hosts, listed


CASES = [("db", "sqlite"), ("db", "mysql"), ("mc", "sqlite"), ("zk", "sqlite"),
         ("mc-dead", "sqlite")]


@pytest.mark.parametrize(("driver", "backend"), CASES, ids=[f"{d}-{b}" for d, b in CASES])
def test_fast_listings_agree_with_the_slow_reference(
        driver: str, backend: str, tmp_path: Path, make_cloud: Any,
        request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    from cellctl import liveness
    from cellctl.liveness import zookeeper
    from cellctl.ops import services as service_ops

    factory = request.getfixturevalue(f"{backend}_factory")
    cloud = make_cloud(factory)
    (cloud.cell_uuid,) = setup_cells(cloud)
    for module in (liveness, service_ops):
        monkeypatch.setattr(module, "JUDGE_BATCH", 7)
    monkeypatch.setattr(memcache, "GET_BATCH", 4)
    monkeypatch.setattr(zookeeper, "MULTI_READ_BATCH", 5)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    tag = f"r{uuid.uuid4().hex[:8]}"
    now = utcnow()
    plant_cell(cloud, rng, tag, now)
    engine = sa.create_engine(cloud.cell_url)
    with engine.connect() as conn:
        live = [dict(r._mapping) for r in conn.execute(
            sa.select(services).where(services.c.deleted == 0))]
    engine.dispose()
    assert {topic_for(s["binary"]) for s in live} == {s["topic"] for s in live}
    conf: list[str] = []
    held: Any = None
    try:
        if driver == "mc":
            server = request.getfixturevalue("memcached_server")
            plant_memcached(server, live, rng, now)
            from pymemcache.client.base import Client

            held = Client(server, serde=_RawSerde())
            conf = ["--config-file", mc_conf(tmp_path, server)]
        elif driver == "mc-dead":
            with closed_port() as port:  # held: refused, never listening
                conf = ["--config-file", mc_conf(tmp_path, f"127.0.0.1:{port}")]
                hosts, listed = run_both(cloud, conf)
                assert (hosts, listed) == expected(cloud, driver, now, None), seed
                return
        elif driver == "zk":
            from kazoo.client import KazooClient

            server = request.getfixturevalue("zookeeper_server")
            prefix = request.getfixturevalue("zk_prefix")
            held = KazooClient(hosts=server)
            held.start(timeout=10)
            held.cellctl_prefix = prefix
            plant_zookeeper(held, prefix, live, rng)
            conf = ["--config-file", zk_conf(tmp_path, server, prefix)]
        hosts, listed = run_both(cloud, conf)
        want_hosts, want_listed = expected(cloud, driver, now, held)
        assert hosts == want_hosts, f"seed {seed}"
        assert listed == want_listed, f"seed {seed}"
        # every state the reference can give was planted and came out
        assert {h["state"] for h in want_hosts} >= {
            "up", "disabled", "down", "forced down", "no service", "unknown"}, seed
        states = {s["state"] for s in want_listed}
        assert states >= ({"up", "down", "unknown"} if driver == "mc" else {"up", "down"}), seed
    finally:
        if driver == "mc" and held is not None:
            held.delete_many([cache_key(s["topic"], s["host"]) for s in live])
            held.close()
        elif driver == "zk" and held is not None:
            held.stop()
            held.close()


def run_both(cloud: Any, conf: list[str]) -> tuple[Any, Any]:
    hosts = cloud.run(*conf, "--format", "json", "list_hosts", "--status")
    listed = cloud.run(*conf, "--format", "json", "service", "list")
    assert hosts.stdout and listed.stdout, (hosts.stderr, listed.stderr)
    return json.loads(hosts.stdout), json.loads(listed.stdout)
