"""add_rate_limited, forget and num_requeues: retries with backoff (client-go's RateLimitingInterface).

The three outcomes of handling a key map onto this queue: failure -> add_rate_limited(key) (wait per the
limiter, then retry); "check again later" -> forget(key) then add_after(key, seconds); success -> forget(key).
"""

from collections.abc import Hashable
from typing import Generic, TypeVar

from dockyard_operator.workqueue.clocks import Clock
from dockyard_operator.workqueue.config import QueueConfig
from dockyard_operator.workqueue.delaying import DelayingQueue
from dockyard_operator.workqueue.observers import QueueObserver
from dockyard_operator.workqueue.ratelimiters import RateLimiter, default_rate_limiter

K = TypeVar("K", bound=Hashable)


class RateLimitingQueue(DelayingQueue[K], Generic[K]):
    """A DelayingQueue that retries failed keys after the delay its rate limiter says."""

    def __init__(self, *, clock: Clock, rate_limiter: RateLimiter[K], observer: QueueObserver | None = None) -> None:
        super().__init__(clock=clock, observer=observer)
        self._rate_limiter = rate_limiter

    def add_rate_limited(self, key: K) -> None:
        """The key failed: add it again after the rate limiter's delay (which records the failure)."""
        if self.shutting_down:
            return  # do not record a failure for a retry that will never happen
        self._observer.on_retry()
        self.add_after(key, self._rate_limiter.when(key))

    def forget(self, key: K) -> None:
        """The key succeeded: reset its backoff. Does not remove it from the queue."""
        self._rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        """Failures of key since it was last forgotten."""
        return self._rate_limiter.num_requeues(key)


def new_queue(*, config: QueueConfig, clock: Clock, observer: QueueObserver | None = None) -> RateLimitingQueue[K]:
    """The queue the operator uses: client-go's default rate limiting with config's numbers."""
    return RateLimitingQueue(
        clock=clock, rate_limiter=default_rate_limiter(config=config, clock=clock), observer=observer
    )
