"""The queue reports depth, adds, wait times and retries to its observer (what the metrics are built from)."""

from __future__ import annotations

import pytest

from dockyard_operator.workqueue import FakeClock, QueueConfig, RateLimitingQueue, new_queue


class RecordingObserver:
    def __init__(self) -> None:
        self.adds = 0
        self.depths: list[int] = []
        self.waits: list[float] = []
        self.retries = 0

    def on_add(self) -> None:
        self.adds += 1

    def on_depth(self, depth: int) -> None:
        self.depths.append(depth)

    def on_wait(self, seconds: float) -> None:
        self.waits.append(seconds)

    def on_retry(self) -> None:
        self.retries += 1


async def test_observer_sees_depth_adds_waits_and_retries() -> None:
    """Deduplicated adds are not counted; wait is add-to-get on the injected clock; retries are counted."""
    clock = FakeClock()
    observer = RecordingObserver()
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=clock, observer=observer)
    queue.add("a")
    queue.add("a")
    clock.advance(2)
    queue.add("b")
    assert observer.adds == 2
    assert observer.depths == [1, 2]
    clock.advance(0.5)
    key = await queue.get()
    assert observer.waits == [pytest.approx(2.5)]
    queue.add_rate_limited(key)
    queue.done(key)
    assert observer.retries == 1
    clock.advance(0.005)
    assert observer.adds == 3
    assert observer.depths[-1] == 2
    await queue.get()
    await queue.get()
    assert observer.waits[1:] == [pytest.approx(0.505), pytest.approx(0.0)]
    assert observer.depths[-1] == 0


async def test_no_retry_is_recorded_after_shutdown() -> None:
    """A failure during shutdown is not counted as a requeue: it will never be retried."""
    observer = RecordingObserver()
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=FakeClock(), observer=observer)
    queue.add("a")
    key = await queue.get()
    queue.shut_down()
    queue.add_rate_limited(key)
    queue.done(key)
    assert observer.retries == 0
    assert queue.num_requeues("a") == 0
