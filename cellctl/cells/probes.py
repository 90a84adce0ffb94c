"""Real connections to databases and queues, each bounded by a timeout.

A probe opens one connection and reports its latency or its (masked) error.
Probes run in parallel daemon threads under one deadline: a driver stuck on a
black-holed or frozen host (PyMySQL waits forever for a server greeting that
never comes) is reported as timed out instead of hanging the command, and a
daemon thread left behind never holds up the process's exit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from cellctl.errors import CellctlError
from cellctl.urls import mask, mask_text, mask_urls_in_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

DEFAULT_TIMEOUT = 5.0  # seconds
# The deadline of a batch is the timeout plus this, so that a driver's own
# timeout (with its clearer message) normally fires first.
DEADLINE_GRACE = 1.0

K = TypeVar("K")


@dataclass(frozen=True)
class Probe:
    ok: bool
    latency_ms: float | None = None
    error: str | None = None  # masked, one line
    timed_out: bool = False  # no answer before the batch's deadline

    @classmethod
    def failed(cls, error: str) -> Probe:
        return cls(False, error=error)


def probe_database(engine: Engine) -> Probe:
    """Connect and run ``SELECT 1``; the engine's connect timeout bounds the connect."""
    from sqlalchemy import text

    start = time.monotonic()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except CellctlError as exc:  # the engine already made it one masked line
        return Probe.failed(str(exc))
    return Probe(True, _ms_since(start))


def probe_queue(url: str, timeout: float, shown_as: str | None = None) -> Probe:
    """Open one kombu connection to ``url`` (a single host), without retrying.

    ``shown_as`` is the URL as the user wrote it (e.g. oslo's ``rabbit://``
    for kombu's ``amqp://``), for the error message.
    """
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.transport  # noqa: B018  (load the transport before timing the connect)
            start = time.monotonic()
            conn.ensure_connection(max_retries=0, timeout=timeout)
            latency = _ms_since(start)
    except Exception as exc:  # each transport raises its own socket/protocol errors
        return Probe.failed(f"Cannot connect to queue {mask(shown_as or url)}: "
                            f"{_one_line(exc, url)}")
    return Probe(True, latency)


def run_bounded(jobs: Mapping[K, Callable[[], Probe]], timeout: float) -> dict[K, Probe]:
    """Run every job at once; whatever has not answered by the deadline has timed out.

    The deadline is ``timeout`` plus DEADLINE_GRACE seconds from now.
    """
    results: dict[K, Probe] = {}
    lock = threading.Lock()

    def work(key: K, job: Callable[[], Probe]) -> None:
        try:
            probe = job()
        except Exception as exc:  # a probe must never take its thread down silently
            probe = Probe.failed(mask_urls_in_text(f"{type(exc).__name__}: {_one_line(exc)}"))
        with lock:
            results[key] = probe

    threads = [threading.Thread(target=work, args=(key, job), daemon=True, name="cellctl-probe")
               for key, job in jobs.items()]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + DEADLINE_GRACE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        finished = dict(results)
    late = Probe(False, error=f"no answer within {timeout:g} s", timed_out=True)
    return {key: finished.get(key, late) for key in jobs}


def _ms_since(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


def _one_line(exc: BaseException, url: str | None = None) -> str:
    text = str(exc).strip() or type(exc).__name__
    return mask_text(text.splitlines()[0], [url])
