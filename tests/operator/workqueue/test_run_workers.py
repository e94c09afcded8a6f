"""run_workers: N workers, one key never handled twice at once, the three outcomes, clean shutdown."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from dockyard_operator.workqueue import FakeClock, QueueConfig, RateLimitingQueue, new_queue, run_workers


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


class RecordingHandler:
    """Blocks each key until released; records concurrency per key and overall."""

    def __init__(self) -> None:
        self.active: Counter[str] = Counter()
        self.max_per_key = 0
        self.max_total = 0
        self.calls: list[str] = []
        self.release = asyncio.Event()
        self.outcomes: dict[str, list[float | Exception | None]] = {}

    async def __call__(self, key: str) -> float | None:
        self.calls.append(key)
        self.active[key] += 1
        self.max_per_key = max(self.max_per_key, self.active[key])
        self.max_total = max(self.max_total, sum(self.active.values()))
        try:
            await self.release.wait()
        finally:
            self.active[key] -= 1
        outcomes = self.outcomes.get(key)
        outcome = outcomes.pop(0) if outcomes else None
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


async def start(queue: RateLimitingQueue[str], handler: RecordingHandler, workers: int) -> asyncio.Task[None]:
    task = asyncio.create_task(run_workers(queue, handler, workers=workers))
    await settle()
    return task


async def test_workers_run_in_parallel_but_never_on_the_same_key() -> None:
    """3 workers, keys a, b, c, d plus a re-added while in flight: 3 at once, a never twice at once."""
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=FakeClock())
    handler = RecordingHandler()
    for key in "abcd":
        queue.add(key)
    task = await start(queue, handler, workers=3)
    assert handler.max_total == 3
    queue.add("a")  # a is in flight: it must wait for done
    await settle()
    assert handler.calls.count("a") == 1
    handler.release.set()
    await settle()
    assert sorted(handler.calls) == ["a", "a", "b", "c", "d"]
    assert handler.max_per_key == 1
    await asyncio.wait_for(queue.shut_down_with_drain(), timeout=5)
    await asyncio.wait_for(task, timeout=5)


async def test_a_failure_is_retried_with_backoff_and_success_forgets() -> None:
    """Fail, fail, succeed: retried after 5 ms then 10 ms of fake time, and the backoff is reset afterwards."""
    clock = FakeClock()
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=clock)
    handler = RecordingHandler()
    handler.release.set()
    handler.outcomes["a"] = [RuntimeError("boom"), RuntimeError("boom again"), None]
    queue.add("a")
    task = await start(queue, handler, workers=1)
    assert handler.calls == ["a"]
    assert queue.num_requeues("a") == 1
    clock.advance(0.004)
    await settle()
    assert handler.calls == ["a"]
    clock.advance(0.001)
    await settle()
    assert handler.calls == ["a", "a"]
    clock.advance(0.01)
    await settle()
    assert handler.calls == ["a", "a", "a"]
    assert queue.num_requeues("a") == 0
    queue.shut_down()
    await asyncio.wait_for(task, timeout=5)


async def test_returning_seconds_requeues_after_that_long() -> None:
    """A handler returning 30 gets the key again after 30 s of fake time, not before."""
    clock = FakeClock()
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=clock)
    handler = RecordingHandler()
    handler.release.set()
    handler.outcomes["a"] = [30.0, None]
    queue.add("a")
    task = await start(queue, handler, workers=2)
    clock.advance(29.9)
    await settle()
    assert handler.calls == ["a"]
    clock.advance(0.1)
    await settle()
    assert handler.calls == ["a", "a"]
    clock.advance(1000)
    await settle()
    assert handler.calls == ["a", "a"]
    queue.shut_down()
    await asyncio.wait_for(task, timeout=5)


async def test_shut_down_lets_in_flight_keys_finish_then_workers_exit() -> None:
    """shut_down() while a key is in flight: run_workers returns only after that handler completed."""
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=FakeClock())
    handler = RecordingHandler()
    queue.add("a")
    queue.add("b")
    task = await start(queue, handler, workers=1)
    queue.shut_down()
    await settle()
    assert not task.done()
    handler.release.set()
    await asyncio.wait_for(task, timeout=5)
    assert handler.calls == ["a"]  # b was waiting and was dropped
    assert queue.processing == 0


async def test_cancelling_run_workers_cancels_handlers_and_marks_keys_done() -> None:
    """Cancellation propagates into handlers and still calls done(), so no key is stuck as processing."""
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=FakeClock())
    handler = RecordingHandler()
    queue.add("a")
    task = await start(queue, handler, workers=2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert queue.processing == 0
    assert handler.active["a"] == 0


async def test_zero_workers_is_refused() -> None:
    """A worker count below 1 is a configuration error, not a queue that never moves."""
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=FakeClock())
    with pytest.raises(ValueError, match="at least 1"):
        await run_workers(queue, RecordingHandler(), workers=0)


async def test_a_deferred_key_comes_back_later_and_keeps_its_backoff() -> None:
    """Defer is neither success nor failure: the failure count a key earned stays (read-your-writes uses it)."""
    from dockyard_operator.workqueue.workers import Defer

    clock = FakeClock()
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=clock)
    outcomes: list[object] = [RuntimeError("first"), Defer(3.0), None]
    seen: list[str] = []

    async def handler(key: str) -> float | Defer | None:
        seen.append(key)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome  # type: ignore[return-value]

    task = asyncio.create_task(run_workers(queue, handler, workers=1))
    queue.add("k")
    for _ in range(50):
        await asyncio.sleep(0)
    clock.advance(1)  # the failure's backoff
    for _ in range(50):
        await asyncio.sleep(0)
    assert seen == ["k", "k"]
    assert queue.num_requeues("k") == 1, "the deferral did not reset the failure count"
    clock.advance(3)
    for _ in range(50):
        await asyncio.sleep(0)
    assert seen == ["k", "k", "k"]
    assert queue.num_requeues("k") == 0, "success forgets it"
    queue.shut_down()
    await task
