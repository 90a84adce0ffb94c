"""The read-ahead thread map_instances reads through: order, errors, early stop."""

from __future__ import annotations

import threading

import pytest

from cellctl.prefetch import prefetched


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
