"""The rolling-update arithmetic, on the cases Kubernetes' own deployment controller tests use.

Sources of the numbers (facts, our own code): pkg/controller/deployment/rolling_test.go
(reconcileNewReplicaSet, reconcileOldReplicaSets, cleanupUnhealthyReplicas, scaleDownOldReplicaSetsForRollingUpdate)
and pkg/controller/deployment/util/deployment_util_test.go (ResolveFenceposts, NewRSNewReplicas, MaxUnavailable),
and apimachinery's intstr rounding. Kubernetes counts through ReplicaSets; here "new" and "old" are replica counts.
"""

from __future__ import annotations

import pytest

from dockyard_operator.deployments.rollout import (
    Counts,
    max_unavailable,
    new_replicas_target,
    old_scale_down,
    recreate_step,
    resolve_fenceposts,
    rolling_step,
    scaled_value,
)


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [("123", 100, True, 123), ("90%", 100, True, 90), ("90%", 95, True, 86), ("90%", 95, False, 85)],
)
def test_int_or_percent_rounding(value: str, total: int, round_up: bool, expected: int) -> None:
    assert scaled_value(value, total, round_up=round_up) == expected


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("0%", "0%", 0, (0, 1)),  # both zero: one may be unavailable, or nothing could ever move
        ("39%", "39%", 10, (4, 3)),  # surge rounds up, unavailable rounds down
        ("0", "39%", 10, (0, 3)),
        ("39%", "0", 10, (4, 0)),
        ("0", "0", 10, (0, 1)),
        ("25%", "25%", 4, (1, 1)),  # the defaults on 4 replicas
        ("25%", "25%", 1, (1, 0)),
        ("1%", "1%", 10, (1, 0)),
    ],
)
def test_resolve_fenceposts(surge: str, unavailable: str, desired: int, expected: tuple[int, int]) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


@pytest.mark.parametrize(
    ("unavailable", "desired", "rolling", "expected"),
    [(5, 10, True, 5), (10, 10, True, 10), (10, 5, True, 5), (10, 0, True, 0), (3, 10, False, 0)],
)
def test_max_unavailable_is_capped_at_the_replicas_and_zero_for_recreate(
    unavailable: int, desired: int, rolling: bool, expected: int
) -> None:
    assert max_unavailable(unavailable, desired, rolling=rolling) == expected


def counts(desired: int, *, old: int, new: int, old_available: int = 0, new_available: int = 0) -> Counts:
    return Counts(desired=desired, new=new, new_available=new_available, old=old, old_available=old_available)


@pytest.mark.parametrize(
    ("desired", "surge", "old", "new", "expected"),
    [
        (10, 0, 10, 0, 0),  # reconcileNewReplicaSet: no room above desired, no scale
        (10, 2, 10, 0, 2),
        (10, 2, 5, 0, 7),
        (10, 2, 10, 2, 2),  # already at desired + surge
        (10, 2, 2, 11, 10),  # more new than desired: scaled down to desired
        # NewRSNewReplicas "can not scale up - to newRSReplicas" (the total is at desired + surge already); the
        # Kubernetes case has more new than desired, which reconcileNewReplicaSet scales down first (row above).
        (5, 1, 3, 3, 3),
        (6, 10, 5, 2, 6),  # NewRSNewReplicas "scale up - to depReplicas"
    ],
)
def test_new_replicas_target(desired: int, surge: int, old: int, new: int, expected: int) -> None:
    assert new_replicas_target(counts(desired, old=old, new=new), surge=surge) == expected


@pytest.mark.parametrize(
    ("desired", "unavailable", "old", "new", "old_ready", "new_ready", "removed"),
    [
        # reconcileOldReplicaSets (maxSurge 0); maxUnavailable 0 resolves to 1 with maxSurge 0
        (10, 1, 10, 0, 10, 0, 1),
        (10, 2, 10, 0, 10, 0, 2),
        (10, 2, 10, 0, 8, 0, 2),  # the 2 unhealthy ones are cleaned up
        (10, 2, 10, 0, 9, 0, 2),  # 1 cleaned up, 1 ready scaled down
        (10, 2, 8, 2, 8, 0, 0),  # the new ones are not available yet: nothing may go
        # cleanupUnhealthyReplicas is capped by maxScaledDown: 9 unhealthy, only 2 may go (minAvailable 8)
        (10, 2, 10, 0, 1, 0, 2),
        (10, 0 + 2, 8, 0, 8, 0, 0),  # scaleDownOldReplicaSetsForRollingUpdate: 8 available is not above 8
    ],
)
def test_old_replicas_scale_down(
    desired: int, unavailable: int, old: int, new: int, old_ready: int, new_ready: int, removed: int
) -> None:
    c = counts(desired, old=old, new=new, old_available=old_ready, new_available=new_ready)
    unhealthy, available = old_scale_down(c, new_total=new, unavailable=unavailable)
    assert unhealthy + available == removed
    assert unhealthy <= old - old_ready, "only unavailable replicas count as the cleanup"


def test_a_whole_rolling_update_never_exceeds_its_limits() -> None:
    """4 replicas, defaults (surge 1, unavailable 1): simulate steps where every new replica becomes available."""
    desired, surge, unavailable = 4, 1, 1
    old, new = 4, 0
    seen = []
    for _ in range(20):
        step = rolling_step(counts(desired, old=old, new=new, old_available=old, new_available=new),
                            surge=surge, unavailable=unavailable)  # fmt: skip
        new += step.scale_up
        assert old + new <= desired + surge
        old -= step.unhealthy_old + step.available_old
        # Every replica that stays is available (they are in this simulation); the new ones just created are not.
        assert old + new - step.scale_up >= desired - unavailable
        seen.append((old, new))
        if old == 0 and new == desired:
            break
    assert seen[-1] == (0, 4)
    assert len(seen) <= 6


def test_recreate_removes_everything_old_before_creating() -> None:
    c = counts(3, old=3, new=0, old_available=2)
    step = recreate_step(c, old_remaining=0)
    assert (step.scale_up, step.unhealthy_old + step.available_old) == (0, 3)
    waiting = recreate_step(counts(3, old=0, new=0), old_remaining=1)
    assert waiting.scale_up == 0, "an old replica still being removed: no new one yet"
    assert recreate_step(counts(3, old=0, new=0), old_remaining=0).scale_up == 3
