"""Per-stream flow-control accounting (yamux credit windows) with receive-window auto-tuning.

The receiver re-grants consumed bytes once at least half of its window has been consumed. If the previous
grant was used up within a few round trips, the window is the bottleneck, so it doubles (up to a ceiling and
only with room under the session cap): the same idea as yamux's RTT-based receive-window growth.
"""

from __future__ import annotations

from typing import Final

GROWTH_RTTS: Final = 4.0
"""A window consumed within this many RTTs is considered too small..."""

STARVED_FRACTION: Final = 8
"""...but only if the peer also ran out of credit (at most size/8 left): then the window, not the receiving
application nor the pipe, is what limits the stream. Without this check a window keeps growing while bytes
queue in socket buffers, and every other stream of the session waits behind that queue."""


class SendWindow:
    """Bytes we may still send on a stream."""

    __slots__ = ("available",)

    def __init__(self, initial: int) -> None:
        self.available = initial


class ReceiveWindow:
    """Bytes the peer may still send us (``available``) and what we hold (``buffered``, ``unacked``).

    Invariant: available + buffered + unacked == size.
    """

    __slots__ = ("available", "buffered", "epoch_start", "size", "starved", "unacked")

    def __init__(self, initial: int) -> None:
        self.size = initial
        self.available = initial
        self.buffered = 0
        self.unacked = 0
        self.epoch_start: float | None = None
        self.starved = False

    def receive(self, n: int) -> bool:
        """Account ``n`` received bytes; False when they exceed the window (the peer broke flow control)."""
        if n > self.available:
            return False
        self.available -= n
        self.buffered += n
        if self.available <= self.size // STARVED_FRACTION:
            # We have parsed (nearly) every byte the peer may send: it is waiting on our grant.
            self.starved = True
        return True

    def consume(self, n: int, *, now: float | None, rtt: float | None, max_size: int, headroom: int) -> int:
        """Account ``n`` bytes read by the application; return the window delta to grant now (0 for none).

        ``headroom`` is how many bytes the window may grow without breaking the session cap.
        """
        n = min(n, self.buffered)
        self.buffered -= n
        self.unacked += n
        if self.unacked == 0 or self.unacked < self.size // 2:
            return 0
        growth = 0
        if (
            self.starved
            and now is not None
            and rtt is not None
            and self.epoch_start is not None
            and now - self.epoch_start < GROWTH_RTTS * rtt
            and self.size < max_size
        ):
            growth = max(0, min(self.size, max_size - self.size, headroom))
            self.size += growth
        if now is not None:
            self.epoch_start = now
        self.starved = False
        delta = self.unacked + growth
        self.unacked = 0
        self.available += delta
        return delta
