"""LoopClock: the real clock is the running loop's time and timers (checked without sleeping)."""

from __future__ import annotations

import asyncio

from dockyard_operator.workqueue import LoopClock


async def test_loop_clock_uses_the_loop_time_and_timers() -> None:
    """now() is loop.time(); call_at schedules a cancellable loop timer at exactly that time."""
    loop = asyncio.get_running_loop()
    clock = LoopClock()
    before = loop.time()
    now = clock.now()
    assert before <= now <= loop.time()
    timer = clock.call_at(now + 3600, lambda: None)
    assert isinstance(timer, asyncio.TimerHandle)
    assert timer.when() == now + 3600
    timer.cancel()
    assert timer.cancelled()
