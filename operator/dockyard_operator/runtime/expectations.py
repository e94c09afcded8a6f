"""Expectations: how many children a controller has asked for that its cache does not show yet (client-go's).

After a controller creates (or deletes) children, its informer shows them only some milliseconds later; a reconcile
in between would count too few (or too many) children and create (or delete) some twice. So the controller records
what it expects before it acts, the child informer's events lower the counts, and a reconcile that finds its
expectations unmet does nothing but wait. Deletions are tracked by child uid, so a child seen twice (its
deletionTimestamp set, then gone) is counted once. Expectations expire after `ttl` (5 minutes, as in client-go):
a lost event must not block a controller forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

#: client-go's ExpectationsTimeout.
DEFAULT_TTL = 300.0


@dataclass
class _Expected:
    adds: int
    deletes: set[str] = field(default_factory=set)
    since: float = 0.0


class Expectations:
    """Pending creations and deletions per controller key."""

    def __init__(self, *, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock  # test seam
        self._items: dict[str, _Expected] = {}

    def expect(self, key: str, *, adds: int = 0, delete_uids: Iterable[str] = ()) -> None:
        """Before acting: `adds` creations and the deletion of these children are about to happen."""
        current = self._items.get(key)
        if current is None or self._expired(current):
            current = self._items[key] = _Expected(adds=0, since=self._clock())
        current.adds += adds
        current.deletes.update(delete_uids)
        current.since = self._clock()

    def creation_observed(self, key: str) -> None:
        current = self._items.get(key)
        if current is not None and current.adds > 0:
            current.adds -= 1

    def creation_failed(self, key: str) -> None:
        """A creation we expected did not happen (the request failed): stop waiting for it."""
        self.creation_observed(key)

    def deletion_observed(self, key: str, uid: str) -> None:
        current = self._items.get(key)
        if current is not None:
            current.deletes.discard(uid)

    def satisfied(self, key: str) -> bool:
        """True when nothing is pending for `key` (or what was pending expired): the cache can be trusted."""
        current = self._items.get(key)
        if current is None:
            return True
        if (current.adds <= 0 and not current.deletes) or self._expired(current):
            del self._items[key]
            return True
        return False

    def forget(self, key: str) -> None:
        self._items.pop(key, None)

    def _expired(self, expected: _Expected) -> bool:
        return self._clock() - expected.since > self._ttl
