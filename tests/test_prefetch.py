"""The read-ahead thread map_instances reads through: order, errors, early stop."""

from __future__ import annotations

import threading
import time

import pytest

from cellctl.prefetch import ReadAhead, prefetched


def test_yields_every_item_in_order():
    assert list(prefetched(iter(range(1000)), depth=2)) == list(range(1000))


def test_a_producer_error_is_raised_in_the_consumer():
    def failing():
        yield 1
        yield 2
        raise ValueError("source broke")

    got = []
    with pytest.raises(ValueError, match="source broke"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_the_producer():
    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    before = threading.active_count()
    items = prefetched(endless(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert threading.active_count() == before
    # Never more than depth items (plus the one being offered) ahead of the consumer.
    assert len(produced) <= 3 + 2 + 1


def test_quick_handoffs_restores_the_interpreter_setting():
    import sys

    from cellctl.prefetch import quick_handoffs

    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError), quick_handoffs():
        assert sys.getswitchinterval() <= 0.0005 < before
        raise RuntimeError("the block failed")
    assert sys.getswitchinterval() == before


def test_read_ahead_starts_before_it_is_iterated():
    """A ReadAhead's thread works from the moment it is made (map_instances sends the
    rest's query so, to be sorted while the head is mapped)."""
    started = threading.Event()

    def source():
        started.set()
        yield "first"

    with ReadAhead(source(), depth=1) as ahead:
        assert started.wait(10), "nothing produced before iterating"
        assert list(ahead) == ["first"]


def test_a_read_ahead_reading_another_stops_waiting_when_closed():
    """A ReadAhead whose thread waits on another ReadAhead's next item (one that will
    not come soon) is closed without waiting for it: its thread gives up."""
    release = threading.Event()

    def slow():
        yield 1
        release.wait(30)
        yield 2

    with ReadAhead(slow(), depth=1) as inner:
        outer = ReadAhead(iter(inner), depth=1)
        assert next(iter(outer)) == 1
        started = time.monotonic()
        outer.close()  # its thread waits on inner's second item, 30 s away
        assert time.monotonic() - started < 5, "closing waited for the other's item"
        release.set()
