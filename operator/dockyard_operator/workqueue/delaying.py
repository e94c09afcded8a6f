"""add_after: a key joins the queue once a delay has passed (client-go's DelayingInterface).

A key waiting for its time is held once, with its earliest deadline: adding it again with a later deadline
changes nothing, an earlier one moves it forward. So the waiting set, like the queue, holds each key at most once.
"""

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from dockyard_operator.workqueue.clocks import Clock, Timer
from dockyard_operator.workqueue.fifo import FifoQueue
from dockyard_operator.workqueue.observers import QueueObserver

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class _Waiting:
    ready_at: float
    timer: Timer


class DelayingQueue(FifoQueue[K], Generic[K]):
    """A FifoQueue whose keys can also be added after a delay."""

    def __init__(self, *, clock: Clock, observer: QueueObserver | None = None) -> None:
        super().__init__(clock=clock, observer=observer)
        self._waiting: dict[K, _Waiting] = {}

    @property
    def waiting(self) -> int:
        """Keys waiting for their delay to pass."""
        return len(self._waiting)

    def add_after(self, key: K, delay: float) -> None:
        """Add key once delay seconds have passed (at once if delay <= 0). Ignored when shutting down."""
        if self.shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready_at = self._clock.now() + delay
        current = self._waiting.get(key)
        if current is not None:
            if current.ready_at <= ready_at:
                return
            current.timer.cancel()
        timer = self._clock.call_at(ready_at, lambda: self._ready(key))
        self._waiting[key] = _Waiting(ready_at=ready_at, timer=timer)

    def _ready(self, key: K) -> None:
        del self._waiting[key]
        self.add(key)

    def shut_down(self) -> None:
        self._cancel_waiting()
        super().shut_down()

    async def shut_down_with_drain(self) -> None:
        # Keys still waiting for their delay are not "in flight": draining does not wait for their timers.
        self._cancel_waiting()
        await super().shut_down_with_drain()

    def _cancel_waiting(self) -> None:
        for waiting in self._waiting.values():
            waiting.timer.cancel()
        self._waiting.clear()
