"""FifoQueue: keys in order, deduplicated while waiting, never handed to two workers, re-queued after done()."""

from __future__ import annotations

import asyncio

import pytest

from dockyard_operator.workqueue import FakeClock, NotProcessingError
from dockyard_operator.workqueue.fifo import FifoQueue


async def settle() -> None:
    """Let every ready task run (no time passes)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_keys_come_out_in_order_and_duplicates_collapse() -> None:
    """a, b, a, c, b -> a, b, c: a key added while waiting is not added twice."""
    queue: FifoQueue[str] = FifoQueue(clock=FakeClock())
    for key in ["a", "b", "a", "c", "b"]:
        queue.add(key)
    assert len(queue) == 3
    assert [await queue.get() for _ in range(3)] == ["a", "b", "c"]
    assert queue.processing == 3


async def test_a_key_being_processed_is_not_handed_out_again_until_done() -> None:
    """Re-adding a key in process marks it dirty; another get() waits; done() hands it out again."""
    queue: FifoQueue[str] = FifoQueue(clock=FakeClock())
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a")
    assert len(queue) == 0  # dirty, but not in line while processing
    second = asyncio.create_task(queue.get())
    await settle()
    assert not second.done()
    queue.done("a")
    assert await second == "a"


async def test_done_without_readd_does_not_requeue() -> None:
    """A key that was not added again while processing is gone after done()."""
    queue: FifoQueue[str] = FifoQueue(clock=FakeClock())
    queue.add("a")
    await queue.get()
    queue.done("a")
    assert len(queue) == 0
    assert queue.processing == 0


async def test_a_waiting_getter_is_woken_by_add() -> None:
    """get() on an empty queue waits for the next add()."""
    queue: FifoQueue[int] = FifoQueue(clock=FakeClock())
    getter = asyncio.create_task(queue.get())
    await settle()
    assert not getter.done()
    queue.add(7)
    assert await getter == 7


async def test_each_key_goes_to_exactly_one_of_many_getters() -> None:
    """Two keys and three waiting getters: two get a key each, the third keeps waiting."""
    queue: FifoQueue[str] = FifoQueue(clock=FakeClock())
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await settle()
    queue.add("a")
    queue.add("b")
    await settle()
    finished = sorted(t.result() for t in getters if t.done())
    assert finished == ["a", "b"]
    pending = [t for t in getters if not t.done()]
    assert len(pending) == 1
    pending[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending[0]


async def test_a_cancelled_getter_passes_its_wakeup_on() -> None:
    """If the getter woken for a key is cancelled before it runs, another waiting getter gets the key."""
    queue: FifoQueue[str] = FifoQueue(clock=FakeClock())
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await settle()
    queue.add("a")  # wakes `first`
    first.cancel()  # ... which is cancelled before it can take "a"
    await settle()
    assert first.cancelled()
    assert await second == "a"


async def test_done_for_a_key_not_handed_out_is_an_error() -> None:
    """done() for an unknown key is a caller bug and says so."""
    queue: FifoQueue[str] = FifoQueue(clock=FakeClock())
    with pytest.raises(NotProcessingError):
        queue.done("nope")
