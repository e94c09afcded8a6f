"""The rolling-update arithmetic of apps/v1 Deployments, as pure functions (the deployment controller's
deployment_util.go: ResolveFenceposts, NewRSNewReplicas, the old-replica scale-down).

Replicas here are counted directly instead of through ReplicaSets: "new" are the replicas of the current
template, "old" every other revision's. The numbers and the rounding are Kubernetes':
- maxSurge rounds up, maxUnavailable rounds down; if both come out zero, maxUnavailable is 1;
- new replicas grow while all replicas stay within desired + maxSurge;
- old replicas shrink while available replicas stay at least desired - maxUnavailable, and unavailable old
  replicas go first (they cost no availability).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def scaled_value(value: str, total: int, *, round_up: bool) -> int:
    """An int-or-percent resolved against `total` (intstr.GetScaledValueFromIntOrPercent)."""
    if value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def resolve_fenceposts(max_surge: str, max_unavailable: str, desired: int) -> tuple[int, int]:
    """(surge, unavailable) for `desired` replicas; never both zero (ResolveFenceposts)."""
    surge = scaled_value(max_surge, desired, round_up=True)
    unavailable = scaled_value(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        # Validation refuses both zero as written, but percentages can round down to it ("1%" of 10):
        # then one replica may be unavailable, or the rollout could never move.
        unavailable = 1
    return surge, unavailable


@dataclass(frozen=True)
class Counts:
    """The replicas of one DockerDeployment, by revision and readiness (deleting and evicted ones excluded)."""

    desired: int
    new: int
    new_available: int
    old: int
    old_available: int

    @property
    def total(self) -> int:
        return self.new + self.old

    @property
    def available(self) -> int:
        return self.new_available + self.old_available


@dataclass(frozen=True)
class Step:
    """What one rolling-update step does: create `scale_up` new replicas; remove `unhealthy_old` old replicas that
    are not available, then `available_old` more (the cheapest remaining, available ones last)."""

    scale_up: int
    unhealthy_old: int
    available_old: int


def max_unavailable(unavailable: int, desired: int, *, rolling: bool) -> int:
    """MaxUnavailable: the resolved value capped at the desired replicas; 0 for Recreate or no replicas."""
    if not rolling or desired == 0:
        return 0
    return min(unavailable, desired)


def new_replicas_target(counts: Counts, *, surge: int) -> int:
    """How many new replicas there should be now (NewRSNewReplicas for RollingUpdate): grow while the total stays
    within desired + maxSurge. More new replicas than desired are scaled down to desired."""
    desired = counts.desired
    if counts.new > desired:
        return desired
    max_total = desired + surge
    if counts.total >= max_total:
        return counts.new
    return counts.new + min(max_total - counts.total, desired - counts.new)


def old_scale_down(counts: Counts, *, new_total: int, unavailable: int) -> tuple[int, int]:
    """(unhealthy, available) old replicas to remove (reconcileOldReplicaSets): availability may not drop below
    desired - maxUnavailable, counting the new replicas not yet available as unavailable; unavailable old replicas
    go first, they cost nothing."""
    if counts.old == 0:
        return 0, 0
    min_available = counts.desired - unavailable
    new_unavailable = new_total - counts.new_available
    max_scaled_down = counts.old + new_total - min_available - new_unavailable
    if max_scaled_down <= 0:
        return 0, 0
    unhealthy = min(counts.old - counts.old_available, max_scaled_down)
    # Then down to minAvailable (scaleDownOldReplicaSetsForRollingUpdate): removing unavailable replicas did not
    # change the available count. The removals take the cheapest remaining old replicas, as a ReplicaSet would.
    further = max(0, min(counts.available - min_available, counts.old - unhealthy))
    return unhealthy, further


def rolling_step(counts: Counts, *, surge: int, unavailable: int) -> Step:
    """One reconcile of a rolling update: reconcileNewReplicaSet, then reconcileOldReplicaSets."""
    target = new_replicas_target(counts, surge=surge)
    unavailable = max_unavailable(unavailable, counts.desired, rolling=True)
    unhealthy, available = old_scale_down(counts, new_total=max(target, counts.new), unavailable=unavailable)
    return Step(max(0, target - counts.new), unhealthy, available)


def recreate_step(counts: Counts, *, old_remaining: int) -> Step:
    """Recreate: every old replica goes; new ones come only once none is left, not even one still being removed."""
    if counts.old > 0:
        return Step(0, counts.old - counts.old_available, counts.old_available)
    if old_remaining > 0:
        return Step(0, 0, 0)
    return Step(max(0, counts.desired - counts.new), 0, 0)
