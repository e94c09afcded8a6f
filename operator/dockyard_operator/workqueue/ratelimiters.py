"""How long a failed key waits before it is retried (client-go's rate limiters, in Python).

Every limiter answers three questions about a key: when (the delay for this failure, which also records it),
forget (the key succeeded; reset its history) and num_requeues (failures since the last forget).
"""

from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from dockyard_operator.workqueue.clocks import Clock
from dockyard_operator.workqueue.config import QueueConfig

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[K_contra]):
    """The three-method protocol every limiter implements."""

    def when(self, key: K_contra) -> float:
        """Record a failure of key and return the seconds it must wait before the next attempt."""
        ...

    def forget(self, key: K_contra) -> None:
        """The key succeeded (or was deleted): clear its failure history."""
        ...

    def num_requeues(self, key: K_contra) -> int:
        """Failures recorded for key since it was last forgotten."""
        ...


class ItemExponentialFailureRateLimiter(Generic[K]):
    """Per-key backoff: base_delay * 2**failures, capped at max_delay."""

    def __init__(self, *, base_delay: float, max_delay: float) -> None:
        self._base_delay = base_delay
        self._max_delay = max_delay
        # One entry per key that failed and was not forgotten: bounded by the number of objects.
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        exponent = self._failures.get(key, 0)
        self._failures[key] = exponent + 1
        # Compare exponents before computing 2**exponent: after ~1000 failures the float would overflow.
        if exponent >= 1024 or self._base_delay * 2.0**exponent > self._max_delay:
            return self._max_delay
        return float(self._base_delay * 2.0**exponent)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter(Generic[K]):
    """An overall token bucket (qps, burst) shared by all keys, like golang.org/x/time/rate's Reserve.

    Each failure takes a token; tokens may go negative, and the delay is the time until this failure's token
    would have been refilled. Keys are not tracked, so forget is a no-op and num_requeues is always 0.
    """

    def __init__(self, *, qps: float, burst: int, clock: Clock) -> None:
        self._qps = qps
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.now()

    def when(self, key: K) -> float:
        now = self._clock.now()
        self._tokens = min(float(self._burst), self._tokens + (now - self._last) * self._qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._qps

    def forget(self, key: K) -> None:
        pass

    def num_requeues(self, key: K) -> int:
        return 0


class MaxOfRateLimiter(Generic[K]):
    """The longest delay any of its limiters asks for (each of them records the failure)."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self._limiters = limiters

    def when(self, key: K) -> float:
        return max([limiter.when(key) for limiter in self._limiters])

    def forget(self, key: K) -> None:
        for limiter in self._limiters:
            limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return max(limiter.num_requeues(key) for limiter in self._limiters)


def default_rate_limiter(*, config: QueueConfig, clock: Clock) -> MaxOfRateLimiter[K]:
    """client-go's default: max(per-key exponential backoff, overall token bucket)."""
    return MaxOfRateLimiter(
        ItemExponentialFailureRateLimiter[K](base_delay=config.base_delay, max_delay=config.max_delay),
        BucketRateLimiter[K](qps=config.qps, burst=config.burst, clock=clock),
    )
