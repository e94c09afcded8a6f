"""What the reconciler remembers about a container between reconciles: back-offs and Docker's restart baseline.

Pure values, replaced (never mutated) by each decision. Times are the monotonic clock's seconds, as the caller
passes them in: back-offs live in this process only, and an operator restart starting them afresh is harmless
(the kubelet's back-offs live in memory too).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class BackOff:
    """Consecutive failures of one kind and when the next attempt may happen (the kubelet's flowcontrol.Backoff)."""

    count: int
    """Failures (or restarts) in a row so far."""
    not_before: float
    """No new attempt before this time."""
    updated: float
    """When the last failure happened."""

    def waiting(self, now: float) -> float:
        """Seconds left before the next attempt (0 when it may happen now)."""
        return max(0.0, self.not_before - now)

    def stale(self, now: float, cap: float) -> bool:
        """A back-off untouched for twice its cap is forgotten, as the kubelet forgets it: the container has been
        fine for long enough that the next failure starts again from the first delay."""
        return now - self.updated > 2 * cap


def next_back_off(previous: BackOff | None, *, now: float, initial: float, cap: float) -> BackOff:
    """The back-off after one more failure: `initial` for the first, doubling, at most `cap`."""
    count = 1 if previous is None or previous.stale(now, cap) else previous.count + 1
    delay = min(cap, initial * 2 ** (count - 1))
    return BackOff(count=count, not_before=now + delay, updated=now)


def delay_of(back_off: BackOff) -> float:
    """The delay this back-off imposed (for messages: 'back-off 20s')."""
    return back_off.not_before - back_off.updated


#: recreate_for of a container found created but never started: a crash between create and start may have left it
#: without its Secret/ConfigMap files, so it is made again rather than started.
UNSTARTED = "unstarted"


class FailureKind(enum.StrEnum):
    """Which step failed: each has its own reason in status, as in the kubelet."""

    PULL = "Pull"
    NEVER_PULL = "NeverPull"
    CREATE = "Create"
    NAME_CONFLICT = "NameConflict"
    START = "Start"


@dataclass(frozen=True)
class Failure:
    """A step that just failed, and Docker's own words about it."""

    kind: FailureKind
    message: str


@dataclass(frozen=True)
class Memory:
    """Per-container state that is not in the object's status."""

    restart_baseline: tuple[str, int] | None = None
    """(container id, Docker's RestartCount) when we last looked: Docker's own restarts are counted as deltas.
    After an operator restart the first sighting only sets the baseline: under-count once rather than twice."""

    failing: tuple[FailureKind, BackOff, str, str] | None = None
    """The step that keeps failing (pull, create, start), its back-off, its last message, and the spec hash it
    failed for: a changed spec (a fixed image tag) is tried at once, not after the old spec's back-off."""

    crash: BackOff | None = None
    """Our own restarts of a container that exited (the kubelet's CrashLoopBackOff)."""

    unhealthy: BackOff | None = None
    """Restarts because of a failing health check (restartOnUnhealthy)."""

    recreate_for: tuple[str, ...] = ()
    """Set between removing a container and creating its replacement: the drifted fields, or UNSTARTED."""

    def with_(self, **changes: object) -> Memory:
        return replace(self, **changes)  # type: ignore[arg-type]
