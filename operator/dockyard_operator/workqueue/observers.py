"""What the queue reports about itself, for metrics (client-go's MetricsProvider, reduced to what we export).

The queue calls an observer; it never imports prometheus. The operator's metrics module adapts these calls to
its series (workqueue_depth, workqueue_adds_total, workqueue_queue_duration_seconds, workqueue_retries_total).
"""

from typing import Protocol


class QueueObserver(Protocol):
    """Receives queue events. Called synchronously in the event loop: keep it cheap and never raise."""

    def on_add(self) -> None:
        """A key entered the line (deduplicated adds are not counted)."""
        ...

    def on_depth(self, depth: int) -> None:
        """The number of keys waiting in line changed."""
        ...

    def on_wait(self, seconds: float) -> None:
        """A worker took a key that had waited this long in line."""
        ...

    def on_retry(self) -> None:
        """A failed key was re-added with rate limiting."""
        ...


class NullObserver:
    """Observes nothing (the default)."""

    def on_add(self) -> None:
        pass

    def on_depth(self, depth: int) -> None:
        pass

    def on_wait(self, seconds: float) -> None:
        pass

    def on_retry(self) -> None:
        pass
