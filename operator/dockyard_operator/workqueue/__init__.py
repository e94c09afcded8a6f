"""A work queue of keys with client-go's semantics, in pure asyncio (no Kubernetes imports).

Layers, each a module: :mod:`fifo` (fair, stingy, processing set, shutdown) -> :mod:`delaying` (add_after) ->
:mod:`ratelimiting` (add_rate_limited, forget, num_requeues) using :mod:`ratelimiters`; :mod:`workers` runs
N workers over it; :mod:`clocks` injects time (FakeClock for tests); :mod:`config` holds the numbers;
:mod:`observers` reports depth, adds, waits and retries for metrics.
"""

from dockyard_operator.workqueue.clocks import Clock, FakeClock, LoopClock
from dockyard_operator.workqueue.config import QueueConfig
from dockyard_operator.workqueue.errors import (
    InvalidQueueConfigError,
    NotProcessingError,
    QueueShutDownError,
    WorkQueueError,
)
from dockyard_operator.workqueue.observers import NullObserver, QueueObserver
from dockyard_operator.workqueue.ratelimiting import RateLimitingQueue, new_queue
from dockyard_operator.workqueue.workers import Defer, Handler, run_workers

__all__ = [
    "Clock",
    "Defer",
    "FakeClock",
    "Handler",
    "InvalidQueueConfigError",
    "LoopClock",
    "NotProcessingError",
    "NullObserver",
    "QueueConfig",
    "QueueObserver",
    "QueueShutDownError",
    "RateLimitingQueue",
    "WorkQueueError",
    "new_queue",
    "run_workers",
]
