"""add_after and add_rate_limited on fake time: keys appear when their delay has passed, earliest first."""

from __future__ import annotations

import pytest

from dockyard_operator.workqueue import FakeClock, QueueConfig, RateLimitingQueue, new_queue
from dockyard_operator.workqueue.delaying import DelayingQueue


async def take_ready(queue: DelayingQueue[str]) -> list[str]:
    """get() every key that is ready now, and mark each done."""
    keys = []
    while len(queue):
        key = await queue.get()
        queue.done(key)
        keys.append(key)
    return keys


async def test_keys_appear_in_deadline_order() -> None:
    """c after 3 s, a after 1 s, b after 2 s -> a, then b, then c, each only once its time has come."""
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    queue.add_after("c", 3)
    queue.add_after("a", 1)
    queue.add_after("b", 2)
    assert queue.waiting == 3
    clock.advance(0.999)
    assert await take_ready(queue) == []
    clock.advance(0.001)
    assert await take_ready(queue) == ["a"]
    clock.advance(5)
    assert await take_ready(queue) == ["b", "c"]
    assert queue.waiting == 0


async def test_the_earliest_deadline_of_a_key_wins() -> None:
    """Adding a waiting key later changes nothing; adding it sooner moves it forward; it appears once."""
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    queue.add_after("a", 5)
    queue.add_after("a", 10)
    queue.add_after("a", 2)
    assert queue.waiting == 1
    clock.advance(2)
    assert await take_ready(queue) == ["a"]
    clock.advance(100)
    assert await take_ready(queue) == []
    assert clock.pending == 0


async def test_zero_or_negative_delay_adds_at_once() -> None:
    """add_after(key, 0) is add(key)."""
    queue: DelayingQueue[str] = DelayingQueue(clock=FakeClock())
    queue.add_after("a", 0)
    queue.add_after("b", -1)
    assert await take_ready(queue) == ["a", "b"]


async def test_a_delayed_key_that_is_already_queued_is_not_duplicated() -> None:
    """When the timer fires for a key that is still waiting in line, the queue still holds it once."""
    clock = FakeClock()
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    queue.add("a")
    queue.add_after("a", 1)
    clock.advance(1)
    assert len(queue) == 1


async def test_rate_limited_retries_follow_the_backoff() -> None:
    """A failing key comes back after 5 ms, then 10 ms, then 20 ms; forget() starts it over."""
    clock = FakeClock()
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=clock)
    queue.add("a")
    for delay in [0.005, 0.01, 0.02]:
        key = await queue.get()
        queue.add_rate_limited(key)
        queue.done(key)
        assert len(queue) == 0
        clock.advance(delay * 0.99)
        assert len(queue) == 0, f"back before {delay}s"
        clock.advance(delay * 0.01)
        assert len(queue) == 1, f"not back after {delay}s"
    assert queue.num_requeues("a") == 3
    queue.forget("a")
    assert queue.num_requeues("a") == 0


@pytest.mark.parametrize("burst", [3])
async def test_the_bucket_limits_retries_across_keys(burst: int) -> None:
    """With burst 3 and 10 qps, the 4th distinct failing key waits 100 ms although its own backoff is 5 ms."""
    clock = FakeClock()
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(burst=burst), clock=clock)
    for key in ["a", "b", "c", "d"]:
        queue.add_rate_limited(key)
    clock.advance(0.005)
    assert await take_ready(queue) == ["a", "b", "c"]
    clock.advance(0.094)
    assert await take_ready(queue) == []
    clock.advance(0.001)
    assert await take_ready(queue) == ["d"]
