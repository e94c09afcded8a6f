"""Read-your-writes for reconcilers: after we write an object, wait for the cache to show that write.

A reconcile woken between our write and the watch event that carries it would compute from the stale cached object
and overwrite what we just wrote (restart counts going backwards, duplicate Events). So after every write the key is
remembered with the resourceVersion the API server returned; a reconcile of that key is deferred (at most
`timeout` seconds) until the informer delivers that version, and the event that delivers it wakes the key at
once. kopf's consistency timeout solves the same problem the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

#: Longest wait for our own write to show up in the cache; after that the reconcile goes ahead anyway.
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class _Written:
    resource_version: str
    deadline: float


class WriteTracker:
    """Remembers our last write per key; answers whether a reconcile must wait for the cache to catch up."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, clock: Callable[[], float] = time.monotonic) -> None:
        self._timeout = timeout
        self._clock = clock  # test seam: a fake clock makes the deadline deterministic
        self._written: dict[str, _Written] = {}
        self._deferred: set[str] = set()

    def wrote(self, key: str, resource_version: str | None) -> None:
        """We wrote `key` and the API server answered with `resource_version`."""
        if resource_version:
            self._written[key] = _Written(str(resource_version), self._clock() + self._timeout)

    def wait_for(self, key: str, cached_version: str | None) -> float | None:
        """Seconds the reconcile of `key` must wait for the cache (then it is marked deferred), or None: go."""
        written = self._written.get(key)
        if written is None:
            self._deferred.discard(key)
            return None
        remaining = written.deadline - self._clock()
        if remaining > 0 and cached_version != written.resource_version:
            self._deferred.add(key)
            return remaining
        del self._written[key]
        self._deferred.discard(key)
        return None

    def observed(self, key: str, resource_version: str | None) -> bool:
        """The cache now holds `resource_version` of `key`. True when a deferred reconcile was waiting for it."""
        written = self._written.get(key)
        if written is None or written.resource_version != resource_version:
            return False
        del self._written[key]
        if key in self._deferred:
            self._deferred.discard(key)
            return True
        return False

    def forget(self, key: str) -> None:
        self._written.pop(key, None)
        self._deferred.discard(key)

    @property
    def pending(self) -> int:
        """Writes not yet seen in the cache."""
        return len(self._written)
