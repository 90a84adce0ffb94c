"""Read ahead in a background thread, so reading one database overlaps writing another.

A bulk copy spends much of its time waiting: for the source database to send
the next rows and for the target to commit the last batch. Iterating the
source in a thread lets those waits overlap (socket waits release the GIL),
while the bounded queue keeps at most ``depth`` items in memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import TypeVar

T = TypeVar("T")

_POLL = 0.1  # seconds between checks that the consumer still wants items


class _End:
    """Put on the queue after the last item; carries the producer's exception, if any."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetched(source: Iterable[T], depth: int = 2) -> Generator[T, None, None]:
    """Yield ``source``'s items, produced by a thread up to ``depth`` items ahead.

    An exception in the producer is raised in the consumer. When the consumer
    stops early (break, exception, close), the producer stops after the item
    it is reading, and is joined before this generator finishes.
    """
    items: queue.Queue[T | _End] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: T | _End) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not offer(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            offer(_End(exc))
            return
        offer(_End())

    thread = threading.Thread(target=produce, name="cellctl-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        thread.join()
