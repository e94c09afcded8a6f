"""Choosing a backend for a new connection: least outstanding connections, random among the tied; ClientIP affinity.

Pure and synchronous (the data plane calls it per connection). Outstanding counts are per backend key across all
ports of a service, so a backend busy on one port is not picked first on another. A client with affinity keeps its
backend while that backend stays Ready and the client comes back within the timeout, as kube-proxy's ClientIP
affinity does.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

#: Affinity entries at most (the oldest are dropped first): a scan of many client addresses cannot grow memory.
MAX_AFFINITY_ENTRIES = 65536


@dataclass
class Balancer:
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic
    outstanding: dict[str, int] = field(default_factory=dict)
    _affinity: dict[str, tuple[str, float]] = field(default_factory=dict)

    def pick(
        self,
        candidates: Sequence[str],
        *,
        client: str | None = None,
        affinity_timeout: float | None = None,
        exclude: Collection[str] = (),
    ) -> str | None:
        """A backend key among `candidates` (the Ready ones) not in `exclude`; None when there is none."""
        usable = [c for c in candidates if c not in exclude]
        if not usable:
            return None
        now = self.clock()
        if client is not None and affinity_timeout is not None:
            remembered = self._affinity.get(client)
            if remembered is not None and remembered[0] in usable and now - remembered[1] <= affinity_timeout:
                self._remember(client, remembered[0], now)
                return remembered[0]
        least = min(self.outstanding.get(c, 0) for c in usable)
        chosen = self.rng.choice([c for c in usable if self.outstanding.get(c, 0) == least])
        if client is not None and affinity_timeout is not None:
            self._remember(client, chosen, now)
        return chosen

    def opened(self, key: str) -> None:
        self.outstanding[key] = self.outstanding.get(key, 0) + 1

    def closed(self, key: str) -> None:
        left = self.outstanding.get(key, 0) - 1
        if left > 0:
            self.outstanding[key] = left
        else:
            self.outstanding.pop(key, None)

    def _remember(self, client: str, key: str, now: float) -> None:
        self._affinity.pop(client, None)
        self._affinity[client] = (key, now)
        while len(self._affinity) > MAX_AFFINITY_ENTRIES:
            del self._affinity[next(iter(self._affinity))]
