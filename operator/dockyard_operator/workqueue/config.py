"""Settings of the work queue and its rate limiting, with client-go's defaults."""

import math
from dataclasses import dataclass

from dockyard_operator.workqueue.errors import InvalidQueueConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """How fast failed keys are retried. The defaults are client-go's DefaultControllerRateLimiter.

    A failed key waits max(per-key backoff, overall bucket delay): the backoff protects one broken object from
    hot-looping, the bucket protects the API server and Docker hosts when many objects fail at once.
    """

    base_delay: float = 0.005
    """Seconds before the first retry of a failed key; doubled on each further failure."""

    max_delay: float = 1000.0
    """Cap on the per-key backoff, in seconds (about 17 minutes), so a key is retried eventually."""

    qps: float = 10.0
    """Overall retries per second once the burst is used up (the token bucket's refill rate)."""

    burst: int = 100
    """Retries that may happen at once before qps applies (the token bucket's size)."""

    def __post_init__(self) -> None:
        for name in ("base_delay", "max_delay", "qps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InvalidQueueConfigError(f"{name} must be a positive number of seconds, not {value!r}")
        if self.max_delay < self.base_delay:
            raise InvalidQueueConfigError(
                f"max_delay ({self.max_delay}) must be at least base_delay ({self.base_delay})"
            )
        if self.burst < 1:
            raise InvalidQueueConfigError(f"burst must be at least 1, not {self.burst!r}")
