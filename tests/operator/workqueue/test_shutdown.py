"""Shutdown: waiters wake, new keys are refused, in-flight keys finish; draining hands out what is waiting."""

from __future__ import annotations

import asyncio

import pytest

from dockyard_operator.workqueue import FakeClock, QueueConfig, QueueShutDownError, RateLimitingQueue, new_queue


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_shut_down_wakes_every_waiting_getter() -> None:
    """Workers blocked in get() all get QueueShutDownError."""
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=FakeClock())
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await settle()
    queue.shut_down()
    for getter in getters:
        with pytest.raises(QueueShutDownError):
            await getter


async def test_shut_down_drops_waiting_keys_and_refuses_new_ones_but_in_flight_keys_finish() -> None:
    """After shut_down(): get() raises at once, add/add_after are ignored, done() of an in-flight key works."""
    clock = FakeClock()
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=clock)
    queue.add("in-flight")
    queue.add("waiting")
    queue.add_after("delayed", 1)
    key = await queue.get()
    queue.shut_down()
    with pytest.raises(QueueShutDownError):
        await queue.get()
    queue.add("new")
    queue.add_after("new-delayed", 1)
    clock.advance(10)
    assert len(queue) == 0
    assert clock.pending == 0
    queue.done(key)
    assert queue.processing == 0


async def test_shut_down_with_drain_hands_out_waiting_keys_and_waits_for_in_flight_ones() -> None:
    """Draining returns only after every waiting and in-flight key was done; then get() raises."""
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=FakeClock())
    for key in ["a", "b"]:
        queue.add(key)
    first = await queue.get()
    drained = asyncio.create_task(queue.shut_down_with_drain())
    await settle()
    assert not drained.done()
    second = await queue.get()  # still handed out while draining
    assert (first, second) == ("a", "b")
    queue.add("c")  # refused: the queue is shutting down
    queue.done(first)
    await settle()
    assert not drained.done()  # "b" is still in flight
    queue.done(second)
    await asyncio.wait_for(drained, timeout=5)
    with pytest.raises(QueueShutDownError):
        await queue.get()


async def test_drain_processes_a_key_readded_before_shutdown_while_in_flight() -> None:
    """A key made dirty while in flight before the drain began is handed out once more during the drain."""
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=FakeClock())
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    drained = asyncio.create_task(queue.shut_down_with_drain())
    queue.done(key)
    assert await queue.get() == "a"
    queue.done("a")
    await asyncio.wait_for(drained, timeout=5)


async def test_drain_of_an_idle_queue_returns_at_once() -> None:
    """Nothing waiting, nothing in flight: nothing to wait for."""
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=FakeClock())
    await asyncio.wait_for(queue.shut_down_with_drain(), timeout=5)


async def test_cancelling_waiters_and_shutting_down_in_the_same_tick_is_clean() -> None:
    """A TaskGroup unwinding cancels workers blocked in get() while shut_down() runs: only CancelledError escapes.

    Regression: the cancelled getter had already been dropped by shut_down(), and get() raised ValueError.
    """
    queue: RateLimitingQueue[str] = new_queue(config=QueueConfig(), clock=FakeClock())
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await settle()
    for getter in getters:
        getter.cancel()
    queue.shut_down()
    results = await asyncio.gather(*getters, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results
