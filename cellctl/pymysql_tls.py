"""PyMySQL connections that build their default TLS context only when the server offers TLS.

Given no ``ssl*`` option, PyMySQL (1.2) connects in its "preferred" TLS mode: for
every connection it builds a default ``SSLContext`` (no CA, no verification),
about 20 ms of CPU, most of it loading the system's CA store, and uses it only
if the server's greeting advertises TLS. A connection made here builds that
same context, by PyMySQL's own ``_create_ssl_ctx({})``, at the moment the server
offers TLS: a server that offers TLS gets the same TLS, one that does not
(e.g. ``have_ssl = DISABLED``) costs nothing. Any explicit ``ssl*`` option goes
to PyMySQL unchanged, as does everything else.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def connect(*args: Any, **kwargs: Any) -> Any:
    """What ``pymysql.connect(*args, **kwargs)`` returns, its default TLS context on demand."""
    return _connection_class()(*args, **kwargs)


@functools.cache
def _connection_class() -> type:
    from pymysql.connections import Connection  # type: ignore[import-untyped]

    if not callable(getattr(Connection, "_create_ssl_ctx", None)):  # another PyMySQL: as is
        return Connection

    class PreferredTLSConnection(Connection):
        def _create_ssl_ctx(self, sslp: Any) -> Any:
            if isinstance(sslp, dict) and not sslp:  # preferred mode: no option given
                return OnDemandContext(functools.partial(super()._create_ssl_ctx, {}))
            return super()._create_ssl_ctx(sslp)

    return PreferredTLSConnection


class OnDemandContext:
    """Stands in for an ``SSLContext`` and builds it on first use."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build: Callable[[], Any] | None = build
        self._context: Any = None

    @property
    def built(self) -> bool:
        return self._context is not None

    def context(self) -> Any:
        if self._context is None:
            assert self._build is not None
            self._context, self._build = self._build(), None
        return self._context

    def wrap_socket(self, *args: Any, **kwargs: Any) -> Any:
        return self.context().wrap_socket(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # any other use: the real context
        return getattr(self.context(), name)
