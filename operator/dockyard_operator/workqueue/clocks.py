"""Time for the work queue, injected so tests run on fake time with no real sleeps.

The queue only needs "what time is it" and "call me back at time T" (a timer it can cancel), which is exactly what
an asyncio loop offers (loop.time() and loop.call_at()); :class:`FakeClock` offers the same with time that moves
only when a test says so.
"""

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class Timer(Protocol):
    """A scheduled callback that can be cancelled (asyncio.TimerHandle satisfies this)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic seconds and timers."""

    def now(self) -> float:
        """The current monotonic time in seconds."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run callback (synchronously, in the event loop) once now() >= when."""
        ...


class LoopClock:
    """The real clock: the running event loop's monotonic time and timers."""

    def __init__(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()

    def now(self) -> float:
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        return self._loop.call_at(when, callback)


@dataclass(order=True)
class _FakeTimer:
    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Test-only seam: time stands still until advance() moves it, firing due timers in deadline order.

    Timers with the same deadline fire in the order they were scheduled, like loop.call_at.
    """

    def __init__(self, *, start: float = 1000.0) -> None:
        self._now = start
        self._timers: list[_FakeTimer] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = _FakeTimer(when=when, seq=next(self._seq), callback=callback)
        heapq.heappush(self._timers, timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move time forward, running each due timer with now() set to its deadline."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        target = self._now + seconds
        while self._timers and self._timers[0].when <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, timer.when)
            timer.callback()
        self._now = target

    @property
    def pending(self) -> int:
        """Timers scheduled and not cancelled."""
        return sum(not t.cancelled for t in self._timers)
