"""Read-your-writes for reconcilers: after we write an object, wait for the cache to show that write.

A reconcile woken between our write and the watch event that carries it would compute from the stale cached object
and overwrite what we just wrote (restart counts going backwards, duplicate Events). So after every write the key is
remembered with the resourceVersion the API server returned; a reconcile of that key is deferred (at most
`timeout` seconds) until the informer delivers that version, and the event that delivers it wakes the key at
once. kopf's consistency timeout solves the same problem the same way.

The watch event of a write can be handled before the write's own response is (both arrive on one event loop).
Then the version is already in the cache when `wrote` is called, and a later change by someone else (a user's
edit) would hide it for good: the reconcile would wait out the whole timeout for an event that has passed. So the
tracker remembers the last few versions the cache has shown of each key and ignores a write it has already seen.
Versions are only ever compared for equality: resourceVersions are opaque.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Longest wait for our own write to show up in the cache; after that the reconcile goes ahead anyway.
DEFAULT_TIMEOUT = 5.0
#: Versions remembered per key, and keys remembered (least recently changed forgotten first). A write's response
#: is handled within a few events of its watch event, so a handful per key is plenty.
RECENT_VERSIONS = 8
RECENT_KEYS = 20_000


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
        self._recent: collections.OrderedDict[str, collections.deque[str]] = collections.OrderedDict()

    def wrote(self, key: str, resource_version: str | None) -> None:
        """We wrote `key` and the API server answered with `resource_version`."""
        if not resource_version:
            return
        if str(resource_version) in self._recent.get(key, ()):
            self._written.pop(key, None)  # its watch event came first: the cache already holds it
            return
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
        if resource_version:
            self._remember(key, str(resource_version))
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
        self._recent.pop(key, None)

    def _remember(self, key: str, resource_version: str) -> None:
        versions = self._recent.get(key)
        if versions is None:
            versions = self._recent[key] = collections.deque(maxlen=RECENT_VERSIONS)
            while len(self._recent) > RECENT_KEYS:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(key)
        versions.append(resource_version)

    @property
    def pending(self) -> int:
        """Writes not yet seen in the cache."""
        return len(self._written)
