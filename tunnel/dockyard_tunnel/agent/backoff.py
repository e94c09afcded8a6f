"""Reconnect delays: exponential backoff with full jitter.

Full jitter (a uniform delay in [0, bound)) spreads a fleet of agents that lost the server at the same moment,
so they do not all come back in the same instant when it returns.
"""

from __future__ import annotations

import random

from dockyard_tunnel.config import BackoffConfig


class Backoff:
    """Hands out the delay before each reconnect attempt; reset after a stable connection."""

    def __init__(self, config: BackoffConfig, *, rng: random.Random | None = None) -> None:
        self._config = config
        # Not for security: jitter only needs to decorrelate agents. A seeded Random is the test seam.
        self._rng = rng or random.Random()  # noqa: S311
        self._failures = 0

    def bound(self) -> float:
        """The upper bound of the next delay."""
        # min() on the exponent first keeps multiplier ** failures from overflowing after days of retries.
        exponent = min(self._failures, 64)
        return min(self._config.cap, self._config.initial * self._config.multiplier**exponent)

    def next_delay(self) -> float:
        delay = self._rng.uniform(0.0, self.bound())
        self._failures += 1
        return delay

    def connection_ended(self, *, lived: float) -> None:
        """Report how long the last connection lived; a stable one starts the sequence over."""
        if lived >= self._config.stable_after:
            self.reset()

    def reset(self) -> None:
        self._failures = 0
