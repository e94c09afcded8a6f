"""Backend choice: least outstanding connections with random ties, exclusions, ClientIP affinity."""

from __future__ import annotations

import random
from collections import Counter

from dockyard_operator.services.balancing import MAX_AFFINITY_ENTRIES, Balancer


def test_the_backend_with_fewest_open_connections_wins() -> None:
    b = Balancer(rng=random.Random(1))
    b.opened("a")
    b.opened("a")
    b.opened("b")
    assert b.pick(["a", "b", "c"]) == "c"
    b.opened("c")
    b.opened("c")
    assert b.pick(["a", "b", "c"]) == "b"
    b.closed("a")
    b.closed("a")
    assert b.pick(["a", "b", "c"]) == "a"
    assert b.outstanding == {"b": 1, "c": 2}, "a closed backend's count goes away"


def test_ties_are_broken_at_random_so_idle_backends_share_the_load() -> None:
    b = Balancer(rng=random.Random(7))
    picks = Counter(b.pick(["a", "b", "c"]) for _ in range(3000))
    assert set(picks) == {"a", "b", "c"}
    assert min(picks.values()) > 800


def test_excluded_backends_are_not_picked_and_none_left_is_none() -> None:
    b = Balancer()
    assert b.pick(["a", "b"], exclude={"a"}) == "b"
    assert b.pick(["a"], exclude={"a"}) is None
    assert b.pick([]) is None


def test_client_ip_affinity_sticks_until_the_timeout_or_the_backend_leaves() -> None:
    now = [0.0]
    b = Balancer(rng=random.Random(3), clock=lambda: now[0])
    first = b.pick(["a", "b", "c"], client="10.0.0.1", affinity_timeout=60)
    assert first is not None
    for _ in range(20):
        b.opened(first)  # even when it is the busiest
        assert b.pick(["a", "b", "c"], client="10.0.0.1", affinity_timeout=60) == first
        now[0] += 30
    others = [x for x in "abc" if x != first]
    moved = b.pick(others, client="10.0.0.1", affinity_timeout=60)
    assert moved in others, "a backend that is no longer Ready loses its clients"
    now[0] += 61
    b.opened(moved)
    assert b.pick(others, client="10.0.0.1", affinity_timeout=60) != moved, "after the timeout, least-loaded again"


def test_without_affinity_nothing_is_remembered_and_the_table_is_bounded() -> None:
    b = Balancer()
    b.pick(["a"], client="10.0.0.1")
    assert b._affinity == {}
    for i in range(MAX_AFFINITY_ENTRIES + 10):
        b.pick(["a"], client=f"c{i}", affinity_timeout=10)
    assert len(b._affinity) == MAX_AFFINITY_ENTRIES
    assert "c0" not in b._affinity, "the oldest client goes first"
