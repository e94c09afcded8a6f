"""Per-stream flow-control accounting (yamux credit windows) with receive-window auto-tuning.

The receiver re-grants consumed bytes once at least half of its window has been consumed. If the previous
grant was used up within a few round trips, the window is the bottleneck, so it doubles (up to a ceiling and
only with room under the session budget): the same idea as yamux's RTT-based receive-window growth.

Whether a due re-grant is sent in full, shrunk or withheld is the session's decision (Connection), because it
depends on every other stream; this module only keeps one stream's numbers.
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
    """Bytes the peer may still send us (``available``), what we hold unread (``buffered``) and what was read but
    not re-granted yet (``unacked``; while the session is over its budget this includes withheld credit).

    ``initial`` is the part of ``available`` that is still the protocol's implicit initial credit: the peer got
    it with the SYN, unasked, so it is not charged to the session budget until the peer uses it.

    Invariants: available + buffered + unacked == size; 0 <= initial <= available.
    """

    __slots__ = ("available", "buffered", "epoch_start", "initial", "size", "starved", "unacked")

    def __init__(self, initial: int) -> None:
        self.size = initial
        self.available = initial
        self.initial = initial
        self.buffered = 0
        self.unacked = 0
        self.epoch_start: float | None = None
        self.starved = False

    @property
    def committed(self) -> int:
        """What this stream charges to the session budget: unread bytes plus credit beyond the unused initial."""
        return self.available + self.buffered - self.initial

    def receive(self, n: int) -> bool:
        """Account ``n`` received bytes; False when they exceed the window (the peer broke flow control).

        Bytes are taken from the initial credit first, so the budget is charged as early as possible.
        """
        if n > self.available:
            return False
        self.available -= n
        self.buffered += n
        if self.initial:
            self.initial = max(0, self.initial - n)
        if self.available <= self.size // STARVED_FRACTION:
            # We have parsed (nearly) every byte the peer may send: it is waiting on our grant.
            self.starved = True
        return True

    def growth(self, *, now: float | None, rtt: float | None, max_size: int, headroom: int) -> int:
        """At a full re-grant: how much the window should grow (0 for none), and start the next epoch.

        ``headroom`` is how many bytes the window may grow without breaking the session budget.
        """
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
        if now is not None:
            self.epoch_start = now
        self.starved = False
        return growth
