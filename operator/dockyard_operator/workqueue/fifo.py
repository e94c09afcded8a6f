"""The base queue: a fair, stingy FIFO of keys with a processing set (client-go's workqueue.Typed).

Properties (the contract every layer above relies on):

* Fair: keys are handed out in the order they were added.
* Stingy: a key added several times before it is handed out is handed out once; a key is never handed out to
  two workers at once. A key added while it is being processed is marked dirty and handed out again after done().
* Many producers and consumers: add() from anywhere in the loop (including timer callbacks); get() from N workers.
* Shutdown: shut_down() makes get() raise QueueShutDownError at once (waiting keys are dropped; the operator's
  level-triggered resync finds them after a restart); shut_down_with_drain() keeps handing out waiting keys and
  returns once nothing is waiting or being processed. Either way, keys being processed finish and done() works.

Keys, not objects: the worker reads the latest object from the informer's store when it gets the key. The queue
holds each key at most once, so its size is bounded by the number of objects being watched.
"""

import asyncio
import contextlib
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from dockyard_operator.workqueue.clocks import Clock
from dockyard_operator.workqueue.errors import NotProcessingError, QueueShutDownError
from dockyard_operator.workqueue.observers import NullObserver, QueueObserver

K = TypeVar("K", bound=Hashable)


class FifoQueue(Generic[K]):
    """A fair, stingy queue of keys (see the module docstring)."""

    def __init__(self, *, clock: Clock, observer: QueueObserver | None = None) -> None:
        self._clock = clock
        self._observer: QueueObserver = observer if observer is not None else NullObserver()
        # When each key in _queue entered it, for the wait-time metric.
        self._enqueued_at: dict[K, float] = {}
        # Keys waiting to be handed out, in order. Invariant: every key here is also in _dirty.
        self._queue: deque[K] = deque()
        # Keys that need processing: waiting in _queue, or added again while in _processing.
        self._dirty: set[K] = set()
        # Keys handed out by get() and not yet done(). A key here is never in _queue.
        self._processing: set[K] = set()
        # get() calls waiting for a key, oldest first.
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        """Keys waiting to be handed out (the queue depth)."""
        return len(self._queue)

    @property
    def processing(self) -> int:
        """Keys handed out and not yet done."""
        return len(self._processing)

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: K) -> None:
        """Mark key as needing processing. Ignored once the queue is shutting down."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        self._idle.clear()
        if key in self._processing:
            return  # handed out again by done()
        self._enqueue(key)

    async def get(self) -> K:
        """The next key, waiting for one if needed. The caller must call done(key) when finished with it.

        Raises QueueShutDownError when the queue is shut down (when draining: and nothing is waiting).
        """
        while True:
            if self._shutting_down and not (self._draining and self._queue):
                raise QueueShutDownError("the work queue is shut down")
            if self._queue:
                break
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except asyncio.CancelledError:
                if getter.done() and not getter.cancelled():
                    self._wake_one()  # we were woken for a key we will not take: pass the wake-up on
                else:
                    # A shut_down() between our cancellation and this line may already have dropped it.
                    with contextlib.suppress(ValueError):
                        self._getters.remove(getter)
                raise
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        self._observer.on_depth(len(self._queue))
        self._observer.on_wait(self._clock.now() - self._enqueued_at.pop(key))
        return key

    def done(self, key: K) -> None:
        """Finished processing key. If it was added meanwhile, it goes back in line."""
        if key not in self._processing:
            raise NotProcessingError(key)
        self._processing.discard(key)
        if key in self._dirty:
            self._enqueue(key)
        elif not self._processing and not self._queue:
            self._idle.set()

    def shut_down(self) -> None:
        """Stop: get() raises from now on, waiting keys are dropped, keys being processed may still finish."""
        self._shutting_down = True
        self._draining = False
        self._queue.clear()
        self._enqueued_at.clear()
        self._dirty.clear()
        self._observer.on_depth(0)
        if not self._processing:
            self._idle.set()
        self._wake_all()

    async def shut_down_with_drain(self) -> None:
        """Stop accepting keys, let workers finish every waiting and in-flight key, and return when idle.

        Needs running workers to make progress; bound it with asyncio.timeout() if they may hang.
        """
        self._shutting_down = True
        self._draining = True
        self._wake_all()
        await self._idle.wait()

    def _enqueue(self, key: K) -> None:
        self._queue.append(key)
        self._enqueued_at[key] = self._clock.now()
        self._observer.on_add()
        self._observer.on_depth(len(self._queue))
        self._wake_one()

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def _wake_all(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
