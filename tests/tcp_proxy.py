"""A small threaded TCP proxy on 127.0.0.1, standing in for a virtual IP.

Deployments put a virtual IP (keepalived, HAProxy) in front of a Galera
cluster: clients connect to one address and reach one node. ``move(port)``
does what a failover does to clients: every open connection is cut (reset),
and new connections reach the other node.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator


class TcpProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self.connections = 0  # accepted so far
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    client.close()
                    return
                target = self.target_port
                self.connections += 1
            try:
                server = socket.create_connection(("127.0.0.1", target), timeout=5)
                server.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._open.update((client, server))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                if sock in self._open:
                    self._open.discard(sock)
                    _reset(sock)

    def move(self, target_port: int) -> None:
        """Fail over: cut every open connection; new ones go to ``target_port``."""
        with self._lock:
            self.target_port = target_port
            doomed = list(self._open)
            self._open.clear()
        for sock in doomed:
            _reset(sock)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._listener.close()
        self.move(self.target_port)


def _reset(sock: socket.socket) -> None:
    """Close with RST, as a peer that vanished looks to the client."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


@contextlib.contextmanager
def tcp_proxy(target_port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_port)
    try:
        yield proxy
    finally:
        proxy.close()
