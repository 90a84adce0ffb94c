"""The ``mc`` driver: Nova 34's heartbeats in memcached, read and written byte for byte.

What Nova's ``MemcachedDriver`` does through oslo.cache and dogpile.cache:

- key: ``sha1("<topic>:<host>")`` in hex (oslo.cache's key mangler), no prefix;
- value: dogpile's ``CachedValue(utcnow(), {"ct": time.time(), "v": 2})``,
  pickled by the memcache client (flags 1): protocol 0 by python-memcached
  (backends ``dogpile.cache.memcached`` and ``oslo_cache.memcache_pool``), the
  highest protocol by pymemcache (``dogpile.cache.pymemcache``);
- exptime: ``[cache] backend_expiration_time``, else 0 (never expires on the
  server); dogpile then judges age on the client: a value is a hit while
  ``now - ct <= expiration_time``, which Nova sets to ``service_down_time``;
- with several servers a key lives where Nova's client puts it: python-memcached's
  crc32 bucket, or pymemcache ``HashClient``'s rendezvous hash (pymemcache's own
  ``RendezvousHash``, over the same node names).

Reading never executes a pickle: ``_HeartbeatUnpickler`` admits only the globals
those pickles name, each narrowed to the one use they have there; anything else
makes that host unknown, with a warning. The wire is pymemcache's ``Client``:
one ``get_many`` per batch of keys and server, servers in parallel, each bounded
by the probe timeout. A server that fails leaves its hosts unknown.
"""

from __future__ import annotations

import binascii
import datetime
import hashlib
import io
import pickle
import re
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from cellctl.liveness.options import MEMCACHED_BACKENDS, MemcacheOptions
from cellctl.liveness.records import BackendUnreachable, ServiceRecord
from cellctl.paging import chunks
from cellctl.urls import mask_urls_in_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

PYMEMCACHE_BACKEND = "dogpile.cache.pymemcache"
GET_BATCH = 1000  # keys per get_many (one request line of ~41 kB)
FLAG_PICKLE = 1  # python-memcached _FLAG_PICKLE, pymemcache serde FLAG_PICKLE
DOGPILE_VALUE_VERSION = 2  # dogpile.cache.region.value_version
MAX_HOSTS_NAMED = 5


class CachedValue(NamedTuple):
    """The shape of ``dogpile.cache.api.CachedValue``; pickles as that name (see ``dumps``)."""

    payload: Any
    metadata: Any


def cache_key(topic: str | None, host: str) -> str:
    """The memcache key of a service: ``"%(topic)s:%(host)s"`` through oslo.cache's mangler."""
    key = f"{topic}:{host}".encode("utf-8", errors="xmlcharrefreplace")
    return hashlib.sha1(key).hexdigest()


def pickle_protocol(backend: str) -> int:
    return pickle.HIGHEST_PROTOCOL if backend == PYMEMCACHE_BACKEND else 0


# --- writing: the bytes dogpile + the memcache client produce ----------------


# The pure-Python pickler (pickle._Pickler): its save_global can be overridden.
_PurePickler: Any = getattr(pickle, "_Pickler")  # noqa: B009


class _DogpilePickler(_PurePickler):
    """The standard pickler, which names ``CachedValue`` as dogpile's class.

    Pickling checks that a class is importable under its name; this driver does
    not need dogpile installed, so the one global is written here as pickle
    itself writes a global (GLOBAL below protocol 4, STACK_GLOBAL from 4 on).
    The result is byte-identical to pickling dogpile's own class (tested).
    """

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj is not CachedValue:
            super().save_global(obj, name)
            return
        module, qualname = "dogpile.cache.api", "CachedValue"
        if self.proto >= 4:
            self.save(module)
            self.save(qualname)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode("ascii"))
        self.memoize(obj)


def dumps(value: CachedValue, protocol: int) -> bytes:
    buffer = io.BytesIO()
    _DogpilePickler(buffer, protocol).dump(value)
    return buffer.getvalue()


def heartbeat_value(protocol: int, *, now: datetime.datetime | None = None,
                    ct: float | None = None) -> bytes:
    """What Nova's ``_report_state`` stores: ``region.set(key, timeutils.utcnow())``."""
    from cellctl.clock import utcnow

    return dumps(CachedValue(now or utcnow(), {"ct": time.time() if ct is None else ct,
                                               "v": DOGPILE_VALUE_VERSION}), protocol)


# --- reading: an allow-list unpickler ------------------------------------------


class NotAHeartbeat(Exception):
    """A memcached value that is not a heartbeat Nova writes."""


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    # copyreg._reconstructor as protocol 0/1 use it for a tuple subclass
    if cls is not CachedValue or base is not tuple or not isinstance(state, tuple):
        raise NotAHeartbeat("copyreg._reconstructor used for something else")
    return tuple.__new__(CachedValue, state)


def _latin1(text: Any, encoding: Any = "utf-8") -> bytes:
    # _codecs.encode as protocols 0-2 use it for datetime's state bytes
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise NotAHeartbeat("_codecs.encode used for something else")
    return text.encode("latin1")


def _datetime(*args: Any) -> datetime.datetime:
    # datetime's pickled state: one 10-byte string (naive: no tzinfo argument)
    if len(args) != 1 or not isinstance(args[0], bytes) or len(args[0]) != 10:
        raise NotAHeartbeat("datetime.datetime with an unexpected state")
    restore: Any = datetime.datetime  # the C type's unpickling form: datetime(state)
    return restore(args[0])


_ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("dogpile.cache.api", "CachedValue"): CachedValue,
    ("datetime", "datetime"): _datetime,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("__builtin__", "tuple"): tuple,
    ("builtins", "tuple"): tuple,
    ("_codecs", "encode"): _latin1,
}


class _HeartbeatUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise NotAHeartbeat(f"it names {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise NotAHeartbeat("it holds a persistent id")


def loads(data: bytes) -> CachedValue:
    """The heartbeat in a value, or NotAHeartbeat; never runs anything but the allow-list."""
    known = _known_shape(data)
    return known if known is not None else _unpickle(data)


def _unpickle(data: bytes) -> CachedValue:
    """``loads`` for any pickle: the allow-list unpickler, after ``_bounded``."""
    _bounded(data)
    try:
        value = _HeartbeatUnpickler(io.BytesIO(data)).load()
    except NotAHeartbeat:
        raise
    except Exception as exc:  # a malformed pickle raises anything from anywhere
        raise NotAHeartbeat(f"it does not unpickle ({type(exc).__name__})") from None
    if not isinstance(value, CachedValue) or not isinstance(value.metadata, dict):
        raise NotAHeartbeat(f"it holds a {type(value).__name__}, not a dogpile CachedValue")
    ct = value.metadata.get("ct")
    if not isinstance(ct, (int, float)) or isinstance(ct, bool):
        raise NotAHeartbeat("its CachedValue has no creation time")
    return value


MAX_VALUE = 4096  # bytes: a heartbeat is ~120 (protocol 5) to ~240 (protocol 0)
MAX_MEMO_INDEX = 256  # a heartbeat's pickle memoizes ~16 objects


def _bounded(data: bytes) -> None:
    """Refuse a value whose unpickling alone could exhaust memory, before it is unpickled.

    The allow-list decides which globals run, not what the unpickler allocates: a
    PUT or LONG_BINPUT naming memo slot 2**31 makes CPython's unpickler grow (and
    zero) its memo to that size, ~32 GiB for a 10-byte value. The opcodes are read
    by ``pickletools.genops``, which executes and allocates nothing.
    """
    import pickletools

    if len(data) > MAX_VALUE:
        raise NotAHeartbeat(f"it is {len(data)} bytes, larger than any heartbeat")
    try:
        for opcode, argument, _ in pickletools.genops(data):
            if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and not (
                    isinstance(argument, int) and 0 <= argument <= MAX_MEMO_INDEX):
                raise NotAHeartbeat(f"it memoizes at slot {argument}, beyond any heartbeat")
    except NotAHeartbeat:
        raise
    except Exception as exc:  # malformed: genops raises ValueError and more
        raise NotAHeartbeat(f"it does not unpickle ({type(exc).__name__})") from None


# The bytes of Nova's heartbeat, but for its two variable parts (the datetime's
# 10-byte state, the creation time), as the memcache clients pickle it:
# python-memcached at protocol 0 (the state as raw-unicode-escaped text, the
# time as repr text), pymemcache at protocol 5 (both binary, a fixed length).
# A value of exactly this shape means what the allow-list unpickler would make
# of it; anything else (another time format, an escaped state byte, one byte
# changed anywhere) goes to that unpickler. Tested against it byte by byte.
_PROTOCOL_0 = (b"ccopy_reg\n_reconstructor\np0\n(cdogpile.cache.api\nCachedValue\np1\n"
               b"c__builtin__\ntuple\np2\n(cdatetime\ndatetime\np3\n(c_codecs\nencode\np4\n(V",
               # the state's 10 characters follow, raw-unicode-escaped, on one line
               b"\np5\nVlatin1\np6\ntp7\nRp8\ntp9\nRp10\n(dp11\nVct\np12\nF",
               # the time's repr follows
               b"\nsVv\np13\nI2\nstp14\ntp15\nRp16\n.")
_P0_STATE = len(_PROTOCOL_0[0])
_P0_TIME_TEXT = re.compile(rb"[0-9]{1,17}\.[0-9]{1,17}")
_PROTOCOL_5 = (b"\x80\x05\x95j\x00\x00\x00\x00\x00\x00\x00\x8c\x11dogpile.cache.api\x94"
               b"\x8c\x0bCachedValue\x94\x93\x94\x8c\x08datetime\x94\x8c\x08datetime\x94"
               b"\x93\x94C\n",  # the state's 10 bytes follow
               b"\x94\x85\x94R\x94}\x94(\x8c\x02ct\x94G",  # the time's 8 bytes follow
               b"\x8c\x01v\x94K\x02u\x86\x94\x81\x94.")
_P5_STATE = len(_PROTOCOL_5[0])
_P5_TIME = _P5_STATE + 10 + len(_PROTOCOL_5[1])
_P5_LENGTH = _P5_TIME + 8 + len(_PROTOCOL_5[2])
_BINFLOAT = struct.Struct(">d")


def _known_shape(data: bytes) -> CachedValue | None:
    """The heartbeat in ``data`` if it is Nova's heartbeat shape (~1 µs, against
    ~30 µs through the unpickler); None for anything else."""
    if len(data) == _P5_LENGTH and data.startswith(_PROTOCOL_5[0]) \
            and data.startswith(_PROTOCOL_5[1], _P5_STATE + 10) \
            and data.endswith(_PROTOCOL_5[2]):
        state = data[_P5_STATE:_P5_STATE + 10]
        ct = _BINFLOAT.unpack_from(data, _P5_TIME)[0]
    elif data.startswith(_PROTOCOL_0[0]) and data.endswith(_PROTOCOL_0[2]):
        # the state's line, as pickle reads a UNICODE line: raw-unicode-escape, then
        # the latin-1 encoding _codecs.encode applies (escaped bytes: \\u000a...)
        end = data.find(_PROTOCOL_0[1], _P0_STATE)
        line = data[_P0_STATE:end]
        text = data[end + len(_PROTOCOL_0[1]):len(data) - len(_PROTOCOL_0[2])]
        if end < 0 or b"\n" in line or _P0_TIME_TEXT.fullmatch(text) is None:
            return None
        try:
            state = line.decode("raw_unicode_escape").encode("latin1")
        except ValueError:  # not a latin-1 string: the unpickler says why
            return None
        ct = float(text)
    else:
        return None
    try:
        when = _datetime(state)
    except Exception:  # a state datetime refuses: the unpickler says why
        return None
    return CachedValue(when, {"ct": ct, "v": DOGPILE_VALUE_VERSION})


# --- which server holds a key --------------------------------------------------


def _python_memcached_bucket(key: str, count: int) -> int:
    """python-memcached's ``cmemcache_hash`` bucket (every server of weight 1)."""
    return (((binascii.crc32(key.encode("utf-8")) & 0xFFFFFFFF) >> 16) & 0x7FFF) % count


def server_picker(backend: str, servers: Sequence[str]) -> Callable[[str], int]:
    """A function from key to the index in ``servers`` of the server Nova's client uses."""
    if backend != PYMEMCACHE_BACKEND:
        return lambda key: _python_memcached_bucket(key, len(servers))
    from pymemcache.client.base import normalize_server_spec
    from pymemcache.client.rendezvous import RendezvousHash

    # HashClient's node names: "%s:%s" % (host, port) of the normalised spec
    names = []
    for server in servers:
        spec = normalize_server_spec(server)
        names.append("%s:%s" % spec if isinstance(spec, tuple) else spec)  # noqa: UP031
    hasher = RendezvousHash()
    for name in names:
        hasher.add_node(name)
    index = {name: i for i, name in enumerate(names)}
    return lambda key: index[hasher.get_node(key)]


def _address(server: str) -> tuple[str, int] | str:
    """A ``memcache_servers`` entry as pymemcache connects to it (python-memcached's
    ``inet:``/``inet6:`` prefixes allowed)."""
    from pymemcache.client.base import normalize_server_spec

    for prefix in ("inet6:", "inet:"):
        server = server.removeprefix(prefix)
    return normalize_server_spec(server)


class _RawSerde:
    """Hands values over as (flags, bytes); writes bytes as pickled (flags 1)."""

    def serialize(self, key: Any, value: bytes) -> tuple[bytes, int]:
        return value, FLAG_PICKLE

    def deserialize(self, key: Any, value: bytes, flags: int) -> tuple[int, bytes]:
        return flags, value


# --- the driver ----------------------------------------------------------------


class MemcacheDriver:
    """Thread-safe: cells are judged in parallel, each call with its own connections
    (taken from a small pool). A server that failed once is not asked again by the
    same driver (one command): its hosts are unknown at once, so a dead server costs
    the timeout once per command, not once per cell."""

    name = "mc"

    def __init__(self, options: MemcacheOptions, *, down_seconds: int, timeout: float) -> None:
        self.options = options
        self.down_seconds = down_seconds
        self.timeout = timeout
        self._warnings: list[str] = []
        self._idle: dict[int, list[Any]] = {}
        self._dead: dict[int, str] = {}  # server index -> why
        self._lock = threading.Lock()

    def describe(self) -> str:
        servers = ", ".join(self.options.servers) or "(no servers)"
        return mask_urls_in_text(f"memcached {servers} ([cache] backend {self.options.backend})")

    def take_warnings(self) -> list[str]:
        with self._lock:
            taken, self._warnings = self._warnings, []
        return taken

    def _usable(self) -> None:
        """Nova's mc driver has no client unless caching is on with memcache servers."""
        opts = self.options
        if not opts.enabled:
            raise BackendUnreachable(
                "servicegroup_driver mc, but [cache] enabled is false: Nova's mc driver has "
                "no memcached client")
        if not opts.servers:
            raise BackendUnreachable(
                "servicegroup_driver mc, but [cache] memcache_servers is empty")
        if opts.backend not in MEMCACHED_BACKENDS:
            raise BackendUnreachable(
                f"servicegroup_driver mc, but [cache] backend {opts.backend} is not a memcached "
                f"backend ({', '.join(MEMCACHED_BACKENDS)})")

    def _acquire(self, index: int) -> Any:
        with self._lock:
            idle = self._idle.setdefault(index, [])
            if idle:
                return idle.pop()
        from pymemcache.client.base import Client

        return Client(_address(self.options.servers[index]), serde=_RawSerde(),
                      connect_timeout=self.timeout, timeout=self.timeout, default_noreply=False)

    def _release(self, index: int, client: Any) -> None:
        with self._lock:
            self._idle.setdefault(index, []).append(client)

    def _unreachable(self, index: int, exc: BaseException) -> str:
        server = self.options.servers[index]
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        return mask_urls_in_text(f"memcached {server} ([cache] backend {self.options.backend}) "
                                 f"did not answer: {reason}")

    def _fetch(self, index: int, keys: list[str]) -> dict[str, tuple[int, bytes]]:
        """Every key's (flags, value) on one server, GET_BATCH keys per request."""
        client = self._acquire(index)
        found: dict[str, tuple[int, bytes]] = {}
        try:
            for batch in chunks(keys, GET_BATCH):
                found.update(client.get_many(batch))
        except BaseException:
            client.close()
            raise
        self._release(index, client)
        return found

    def alive(self, services: Sequence[ServiceRecord],
              now: datetime.datetime) -> list[bool | None]:
        self._usable()
        if not services:
            return []
        keys = [cache_key(s.topic, s.host) for s in services]
        if len(self.options.servers) == 1:  # every key on the one server
            servers = [0] * len(keys)
            by_server = {0: keys}
        else:
            pick = server_picker(self.options.backend, self.options.servers)
            servers = [pick(key) for key in keys]
            by_server = {}
            for key, index in zip(keys, servers, strict=True):
                by_server.setdefault(index, []).append(key)
        with self._lock:
            dead = {i: why for i, why in self._dead.items() if i in by_server}
        found: dict[str, tuple[int, bytes]] = {}
        lock = threading.Lock()

        def fetch(index: int, wanted: list[str]) -> None:
            try:
                got = self._fetch(index, list(dict.fromkeys(wanted)))
            except Exception as exc:  # socket errors, timeouts, protocol errors
                with lock:
                    dead[index] = self._unreachable(index, exc)
                return
            with lock:
                found.update(got)

        asked = [i for i in by_server if i not in dead]
        threads = [threading.Thread(target=fetch, args=(i, by_server[i]), daemon=True,
                                    name="cellctl-mc") for i in asked]
        for thread in threads:
            thread.start()
        # pymemcache's socket timeouts bound each read; this bounds a server that
        # trickles bytes forever
        deadline = time.monotonic() + self.timeout * 2 + 1
        for thread, index in zip(threads, asked, strict=True):
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                with lock:
                    dead.setdefault(index, self._unreachable(
                        index, TimeoutError(f"no answer within {self.timeout:g} s")))
        with lock:
            dead_now, snapshot = dict(dead), dict(found)
        with self._lock:
            fresh = [why for i, why in dead_now.items() if i not in self._dead]
            self._dead.update(dead_now)
        if len(dead_now) == len(by_server):
            raise BackendUnreachable("; ".join(dead_now[i] for i in sorted(dead_now)))
        now_epoch = now.replace(tzinfo=datetime.UTC).timestamp()
        verdicts: list[bool | None] = []
        hostile: list[str] = []
        for service, key, index in zip(services, keys, servers, strict=True):
            if index in dead_now:
                verdicts.append(None)
                continue
            verdict, why = self._verdict(snapshot.get(key), now_epoch)
            if why:
                hostile.append(f"{service.topic}:{service.host} ({why})")
            verdicts.append(verdict)
        warnings = [f"{why}: liveness of its hosts unknown" for why in fresh]
        if hostile:
            more = len(hostile) - MAX_HOSTS_NAMED
            warnings.append(
                f"memcached holds {len(hostile)} value(s) under service keys that are not "
                f"heartbeats Nova writes, not unpickled: {', '.join(hostile[:MAX_HOSTS_NAMED])}"
                + (f" and {more} more" if more > 0 else "") + "; those services are unknown")
        with self._lock:
            self._warnings += warnings
        return verdicts

    def _verdict(self, item: tuple[int, bytes] | None,
                 now_epoch: float) -> tuple[bool | None, str | None]:
        if item is None:
            return False, None  # no heartbeat (or the server's TTL expired it)
        flags, data = item
        if flags != FLAG_PICKLE:
            return None, f"flags {flags}, not a pickle"
        try:
            value = loads(data)
        except NotAHeartbeat as exc:
            return None, str(exc)
        if value.metadata.get("v") != DOGPILE_VALUE_VERSION:
            return False, None  # dogpile: a value of another version is a miss
        return now_epoch - float(value.metadata["ct"]) <= self.down_seconds, None

    def report(self, cell_db: Engine, service: ServiceRecord) -> datetime.datetime:
        """``self.mc.set(str(key), timeutils.utcnow())``; the database is not touched."""
        from cellctl.clock import utcnow

        self._usable()
        key = cache_key(service.topic, service.host)
        index = server_picker(self.options.backend, self.options.servers)(key)
        now = utcnow()
        value = heartbeat_value(pickle_protocol(self.options.backend), now=now)
        client = self._acquire(index)
        try:
            client.set(key, value, expire=self.options.backend_expiration_time or 0)
        except Exception as exc:
            client.close()
            raise BackendUnreachable(self._unreachable(index, exc)) from None
        self._release(index, client)
        with self._lock:
            self._dead.pop(index, None)
        return now

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for clients in idle.values():
            for client in clients:
                client.close()
