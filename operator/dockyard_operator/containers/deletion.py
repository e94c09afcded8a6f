"""Deleting a DockerContainer: remove its Docker container, then release the finalizer (pure decision).

- the host is reachable: every container carrying the object's uid label there is stopped (with the grace period)
  and removed, then the finalizer goes;
- the host is gone, or being deleted and (by a verdict, not for lack of one) unreachable: the finalizer goes at
  once, with a Warning naming what may be left (waiting for a host that will not come back would block the
  namespace's deletion for nothing);
- the host exists but is unreachable: wait for it, re-checking every 30 s, at most `timeout` seconds, then release
  with a Warning (the container is orphaned);
- `dockyard.dev/orphan: "true"` on the object: release at once and leave the container running;
- never placed: any copy a crash may have left on an eligible host (found by label) is removed, then release.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dockyard_operator.api.dockercontainer import EventReason
from dockyard_operator.containers.actions import RemoveContainer
from dockyard_operator.containers.decisions import Found
from dockyard_operator.containers.scheduling import HostView
from dockyard_operator.runtime.plans import Event

FINALIZER = "dockyard.dev/container-cleanup"
ORPHAN_ANNOTATION = "dockyard.dev/orphan"
#: While waiting for an unreachable host, look again at least this often (its return also wakes us at once).
RECHECK = 30.0


@dataclass(frozen=True)
class DeletionPlan:
    actions: tuple[RemoveContainer, ...]
    release: bool
    """Remove the finalizer once the actions are done."""
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None


def decide_deletion(
    *,
    host: str | None,
    view: HostView | None,
    orphan: bool,
    waited: float,
    timeout: float,
    found: Sequence[tuple[str, Found]] | None,
    container_id: str | None,
    grace_seconds: int,
) -> DeletionPlan:
    """`found` lists (host, container) carrying the uid label, from every host that could be listed (None: none)."""
    where = f" on {host}" if host else ""
    if orphan:
        note = f"left the container running{where} (dockyard.dev/orphan)"
        return DeletionPlan((), True, (Event(EventReason.ORPHANED.value, note),))
    removals = tuple(
        RemoveContainer(h, f.id, f.running, grace_seconds, "the DockerContainer is being deleted")
        for h, f in found or ()
    )
    if host is None:
        return DeletionPlan(removals, True)
    if view is None or (view.deleting and view.decided and not view.reachable):
        what = f"container {container_id[:12]}" if container_id else "its container"
        note = f"DockerHost {host} is gone or being deleted and unreachable; {what} may remain there"
        return DeletionPlan((), True, (Event(EventReason.ORPHANED.value, note, warning=True),))
    if view.reachable:
        events = (Event(EventReason.KILLING.value, f"stopping and removing the container{where}"),) if removals else ()
        return DeletionPlan(removals, True, events)
    if waited < timeout:
        return DeletionPlan((), False, requeue_after=min(RECHECK, timeout - waited))
    note = f"host {host} unreachable for {waited:.0f}s during deletion; the container is orphaned"
    return DeletionPlan((), True, (Event(EventReason.FAILED.value, note, warning=True),))
