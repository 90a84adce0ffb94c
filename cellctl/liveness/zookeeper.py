"""The ``zk`` driver: Nova 12's ZooKeeper service group, read and joined through kazoo.

Layout (Nova 12's ``nova/servicegroup/drivers/zk.py`` with evzookeeper's
``Membership``): ``<[zookeeper] sg_prefix>/<topic>/<host>`` is a persistent znode
holding ``ZKMembers``; each running process of that service holds one
ephemeral child of it, named by its process id. ZooKeeper deletes an ephemeral
node when its session ends (the process died, or lost the server for longer
than its session timeout), so a host is up while its znode has a child.

Reading, the cheapest correct way: the data and Stat (whose ``numChildren``
counts the processes) of each host's znode that was asked about, through
ZooKeeper 3.6's ``multiRead``, MULTI_READ_BATCH znodes a request (kazoo does
not speak it, so this module builds the request on kazoo's own serializers;
a znode that does not exist is one error entry of the answer: down), or on an
older server one ``get`` per znode. Either way all requests are sent at once,
pipelined on the one session, so the cost is the server's time per znode, not
a round trip per host. Each answer is reduced to one bool as it is decoded.
(An earlier version listed each group first with ``get_children``: for a
group of 100,000 hosts that is a 3 MB answer decoded into 100,000 strings per
call, for nothing a missing znode's error entry does not say.)

``report`` (``cellctl service heartbeat``) creates the host's znode when
missing and keeps one ephemeral child for as long as the session lives; each
beat checks the child is still there and recreates it after a session expiry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cellctl.liveness.options import ZooKeeperOptions
from cellctl.liveness.records import BackendUnreachable, ServiceRecord
from cellctl.paging import chunks
from cellctl.urls import mask_urls_in_text

if TYPE_CHECKING:
    import datetime

    from sqlalchemy.engine import Engine

MEMBERS_DATA = b"ZKMembers"
MULTI_READ_BATCH = 1000  # znodes per multiRead: ~60 kB asked, ~90 kB answered (< jute.maxbuffer)
_NUM_CHILDREN_AT = 56  # offset of numChildren in a Stat (kazoo's stat_struct, "!qqqqiiiqiiq")
# What kazoo raises when the server does not know multiRead (op 22, ZooKeeper < 3.6)
_NO_MULTI_READ = ("UnimplementedError", "MarshallingError", "BadArgumentsError")


def _multi_read_request() -> Any:
    """kazoo's request type for ZooKeeper 3.6's multiRead of getData operations.

    kazoo speaks ``multi`` (writes, op 14) but not ``multiRead`` (op 22); this
    request is built from kazoo's own serialization pieces the way its
    ``Transaction`` is, and sent through the client's session like any call.
    Answers, per znode: whether it is a live member (``is_member`` of its data
    and child count; nothing else of the answer is kept), or the error of that
    one read.
    """
    from kazoo.exceptions import EXCEPTIONS
    from kazoo.protocol.serialization import (
        GetData,
        MultiHeader,
        int_struct,
        multiheader_struct,
        read_buffer,
        stat_struct,
    )

    class MultiRead:
        type = 22

        def __init__(self, paths: list[str]) -> None:
            self.paths = paths

        def serialize(self) -> bytearray:
            out = bytearray()
            for path in self.paths:
                out.extend(MultiHeader(GetData.type, False, -1).serialize()
                           + GetData(path, None).serialize())
            return out + multiheader_struct.pack(-1, True, -1)

        def deserialize(self, data: bytes, offset: int) -> list[Any]:
            results: list[Any] = []
            header, offset = MultiHeader.deserialize(data, offset)
            while not header.done:
                if header.type == GetData.type:
                    value, offset = read_buffer(data, offset)
                    children = int_struct.unpack_from(data, offset + _NUM_CHILDREN_AT)[0]
                    results.append(is_member(value, children))
                    offset += stat_struct.size
                else:  # -1: this read failed
                    error = int_struct.unpack_from(data, offset)[0]
                    offset += int_struct.size
                    results.append(EXCEPTIONS[error]())
                header, offset = MultiHeader.deserialize(data, offset)
            return results

    return MultiRead


def is_member(data: bytes | None, children: int) -> bool:
    """A host's znode says its service is up: it holds ``ZKMembers`` and has at least
    one (ephemeral) child, a running process."""
    return data == MEMBERS_DATA and children > 0


def _quiet_kazoo() -> None:
    # kazoo logs every failed connection attempt at WARNING; Python's last-resort
    # handler would print those on stderr. The driver reports failures itself.
    logger = logging.getLogger("kazoo")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False


class ZooKeeperDriver:
    name = "zk"

    def __init__(self, options: ZooKeeperOptions, *, timeout: float) -> None:
        self.options = options
        self.timeout = timeout
        self._zk: Any = None
        self._member: str | None = None  # the ephemeral child this process holds
        self._broken: BackendUnreachable | None = None
        self._multi_read: bool | None = None  # None: not tried yet
        self._lock = threading.Lock()

    def describe(self) -> str:
        address = self.options.address or "(no [zookeeper] address)"
        return mask_urls_in_text(f"ZooKeeper {address} (sg_prefix {self.options.sg_prefix})")

    def take_warnings(self) -> list[str]:
        return []  # no per-service verdict is withheld: a listed znode is up or down

    def _fail(self, what: str, exc: BaseException | None = None) -> BackendUnreachable:
        reason = ""
        if exc is not None:
            text = str(exc).strip()
            reason = ": " + (text.splitlines()[0] if text else type(exc).__name__)
        return BackendUnreachable(mask_urls_in_text(f"{self.describe()} {what}{reason}"))

    def _client(self) -> Any:
        with self._lock:
            if self._zk is not None:
                return self._zk
            if self._broken is not None:  # one try per command, not one per call
                raise self._broken
            if not self.options.address:
                raise BackendUnreachable(
                    "servicegroup_driver zk, but [zookeeper] address is not set")
            _quiet_kazoo()
            from kazoo.client import KazooClient
            from kazoo.retry import KazooRetry

            zk = KazooClient(hosts=self.options.address,
                             timeout=self.options.recv_timeout_ms / 1000.0,
                             connection_retry=KazooRetry(max_tries=-1, max_delay=1.0),
                             randomize_hosts=False)
            # start_async + wait, not start(): start() stops a client that did not
            # connect in time by joining its connection thread, which sits in a
            # connect() to a black-holed address for the whole session timeout.
            try:
                connected = zk.start_async().wait(timeout=self.timeout) and zk.connected
            except Exception as exc:  # a malformed address
                _stop_in_background(zk)
                self._broken = self._fail("cannot be used", exc)
                raise self._broken from None
            if not connected:
                _stop_in_background(zk)
                self._broken = self._fail(f"did not answer within {self.timeout:g} s")
                raise self._broken
            self._zk = zk
            return zk

    def _wait(self, async_result: Any, deadline: float) -> Any:
        return async_result.get(timeout=max(0.01, deadline - time.monotonic()))

    def alive(self, services: Sequence[ServiceRecord],
              now: datetime.datetime) -> list[bool | None]:
        """Thread-safe: kazoo pipelines the requests of every caller on one session.

        Bounded: each answer must come within the timeout of the previous one
        (a frozen server costs the timeout once; a large fleet is not cut short)."""
        if not services:
            return []
        zk = self._client()
        prefix = self.options.sg_prefix.rstrip("/")
        paths = [f"{prefix}/{service.topic}/{service.host}" for service in services]
        try:
            return list(self._members(zk, paths))
        except BackendUnreachable:
            raise
        except Exception as exc:  # connection loss, session expiry, timeout
            self._reset()
            self._broken = self._fail("did not answer", exc)
            raise self._broken from None

    def _members(self, zk: Any, paths: list[str]) -> list[bool]:
        """Whether each znode is a live member (False where it does not exist): ZooKeeper
        3.6+'s multiRead, MULTI_READ_BATCH znodes a request, all requests pipelined;
        one pipelined get per znode on an older server."""
        if self._multi_read is not False:
            try:
                found = self._reads(zk, paths, batched=True)
                self._multi_read = True
                return found
            except Exception as exc:
                if self._multi_read or type(exc).__name__ not in _NO_MULTI_READ:
                    raise
                self._multi_read = False  # the server predates multiRead
        return self._reads(zk, paths, batched=False)

    def _reads(self, zk: Any, paths: list[str], *, batched: bool) -> list[bool]:
        from kazoo.exceptions import NoNodeError

        if batched:
            request_class = _multi_read_request()
            requests = []
            for batch in chunks(paths, MULTI_READ_BATCH):
                async_result = zk.handler.async_result()
                zk._call(request_class(list(batch)), async_result)
                requests.append(async_result)
        else:
            requests = [zk.get_async(path) for path in paths]
        found: list[bool] = []
        deadline = time.monotonic() + self.timeout
        for request in requests:
            try:
                answer = self._wait(request, deadline)
            except NoNodeError:
                answer = False
            deadline = time.monotonic() + self.timeout
            if not batched:
                found.append(answer and is_member(answer[0], answer[1].numChildren))
                continue
            for item in answer:
                if isinstance(item, Exception) and not isinstance(item, NoNodeError):
                    raise item
                found.append(item is True)
        return found

    def report(self, cell_db: Engine, service: ServiceRecord) -> datetime.datetime:
        """Join ``<sg_prefix>/<topic>/<host>`` as evzookeeper's Membership does: the
        host znode with ``ZKMembers``, and this process's ephemeral child."""
        from kazoo.exceptions import NodeExistsError

        from cellctl.clock import utcnow

        self._broken = None  # every beat tries again
        zk = self._client()
        group = f"{self.options.sg_prefix.rstrip('/')}/{service.topic}/{service.host}"
        member = f"{group}/{os.getpid()}"
        deadline = time.monotonic() + self.timeout
        try:
            if self._member == member and self._wait(zk.exists_async(member), deadline):
                return utcnow()
            with contextlib.suppress(NodeExistsError):
                self._wait(zk.create_async(group, MEMBERS_DATA, makepath=True), deadline)
            try:
                self._wait(zk.create_async(member, b"", ephemeral=True), deadline)
            except NodeExistsError:
                # A child of that name from an older session of the same pid: take it over.
                self._wait(zk.delete_async(member), deadline)
                self._wait(zk.create_async(member, b"", ephemeral=True), deadline)
        except Exception as exc:
            raise self._fail("did not take the heartbeat", exc) from None
        self._member = member
        return utcnow()

    def _reset(self, wait: float = 0.0) -> None:
        """Drop the session; wait up to ``wait`` s for its close (ephemeral children
        then go at once, instead of at the session timeout)."""
        with self._lock:
            zk, self._zk = self._zk, None
        if zk is not None:
            _stop_in_background(zk).join(wait)

    def close(self) -> None:
        self._member = None
        self._reset(wait=self.timeout)


def _stop_in_background(zk: Any) -> threading.Thread:
    thread = threading.Thread(target=_stop, args=(zk,), daemon=True, name="cellctl-zk-stop")
    thread.start()
    return thread


def _stop(zk: Any) -> None:
    try:
        zk.stop()
        zk.close()
    except Exception:  # already stopped, or the socket is gone
        pass
