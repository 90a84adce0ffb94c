"""cellctl's hash ring against the real tooz.hashring.HashRing that Nova's Ironic driver uses."""

from __future__ import annotations

import random
import string
import time
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st
from tooz.hashring import HashRing as ToozRing

from cellctl.hashring import PARTITIONS, HashRing, nova_ring

MEMBER_COUNTS = [1, 2, 3, 5, 8, 13, 21, 50, 100, 200]


def tooz_owner(ring: ToozRing, node: str) -> str | None:
    """What nova.virt.ironic.driver asks: get_nodes(uuid.encode('utf-8')), one replica."""
    owners = ring.get_nodes(node.encode("utf-8"))
    assert len(owners) <= 1
    return next(iter(owners), None)


def mixed_case_host(rng: random.Random, n: int) -> str:
    letters = "".join(rng.choice(string.ascii_letters + string.digits + "-._") for _ in range(8))
    return f"{rng.choice(['Ironic', 'ironic', 'IRONIC', 'cmp', 'BM'])}-{letters}-{n}"


def test_owners_identical_to_tooz_on_ten_thousand_nodes_per_member_set():
    rng = random.Random(20261201)
    compared = 0
    for count in MEMBER_COUNTS:
        hosts = [mixed_case_host(rng, n) for n in range(count)]
        members = {h.lower() for h in hosts}  # what Nova hands tooz
        theirs = ToozRing(members, partitions=32)
        ours = nova_ring(hosts)
        assert len(ours) == len(theirs) == 32 * len(members)
        nodes = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(10_000)]
        mismatches = [n for n in nodes if ours.owner(n) != tooz_owner(theirs, n)]
        assert mismatches == []
        # Every member owns something at 10,000 keys, and nothing outside the set.
        assert {ours.owner(n) for n in nodes} <= members
        compared += len(nodes)
    assert compared == 10_000 * len(MEMBER_COUNTS)


def test_the_ring_is_not_trivially_equal_a_different_member_moves_nodes():
    """The comparison above could not pass by accident: rings of different members disagree."""
    nodes = [str(uuid.uuid4()) for _ in range(2000)]
    one = nova_ring([f"h{n}" for n in range(10)])
    other = nova_ring([f"h{n}" for n in range(11)])
    moved = sum(one.owner(n) != other.owner(n) for n in nodes)
    assert 0 < moved < len(nodes) / 4  # consistent hashing: about 1/11 move


@settings(max_examples=200, deadline=None)
@given(members=st.sets(st.text(min_size=1, max_size=30), min_size=1, max_size=40),
       keys=st.lists(st.text(max_size=40), min_size=1, max_size=50))
def test_owners_identical_to_tooz_for_any_names(members, keys):
    theirs = ToozRing(members, partitions=PARTITIONS)
    ours = HashRing(members)
    assert [ours.owner(k) for k in keys] == [tooz_owner(theirs, k) for k in keys]
    assert [ours.owner(k.encode()) for k in keys] == [ours.owner(k) for k in keys]


def test_lower_cases_like_nova_and_empty_ring_has_no_owner():
    assert nova_ring(["CMP-A", "cmp-a", "Cmp-B"]).members == {"cmp-a", "cmp-b"}
    assert HashRing([]).owner("anything") is None
    assert tooz_owner(ToozRing([], partitions=32), "anything") is None
    assert HashRing(["Only"]).owner(str(uuid.uuid4())) == "Only"


def test_a_hundred_thousand_lookups_take_well_under_a_second():
    ring = nova_ring(f"ironic-{n}" for n in range(100))
    nodes = [str(uuid.uuid4()) for _ in range(100_000)]
    started = time.perf_counter()
    owners = [ring.owner(n) for n in nodes]
    elapsed = time.perf_counter() - started
    assert len(set(owners)) == 100
    assert elapsed < 3, elapsed  # about 0.15 s on an idle core; a ring rebuilt per node: minutes
