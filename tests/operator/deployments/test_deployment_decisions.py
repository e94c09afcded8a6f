"""The DockerDeployment decision on a fake clock: scaling, spreading, rolling updates, stalls, deadlines, host
failure, Recreate, pause, minReadySeconds."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from dockyard_operator.api.dockerdeployment import DockerDeploymentSpec, DockerDeploymentStatus
from dockyard_operator.deployments.decisions import Facts, HostSlot, Plan, Replica, decide

T0 = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.UTC)
NEW, OLD = "newhash", "oldhash"


def spec(**fields: Any) -> DockerDeploymentSpec:
    document: dict[str, Any] = {
        "replicas": 4,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"image": "busybox:1", "hostSelector": {"matchLabels": {"site": "edge"}}},
        },
    }
    document.update(fields)
    return DockerDeploymentSpec.model_validate(document)


def replica(name: str, *, hash_: str = NEW, host: str | None = "a", ready: bool = True, ready_for: float = 3600,
            **kw: Any) -> Replica:  # fmt: skip
    return Replica(
        name=name,
        uid=f"uid-{name}",
        template_hash=hash_,
        host=host,
        created=T0 - datetime.timedelta(hours=2),
        ready=ready,
        ready_since=T0 - datetime.timedelta(seconds=ready_for) if ready else None,
        **kw,
    )


HOSTS = (HostSlot("a", True), HostSlot("b", True))


def run(s: DockerDeploymentSpec, replicas: list[Replica], *, hosts: tuple[HostSlot, ...] | None = HOSTS,
        status: DockerDeploymentStatus | None = None, now: datetime.datetime = T0,
        ports: frozenset[tuple[int, str, str]] = frozenset()) -> Plan:  # fmt: skip
    return decide(
        Facts(
            spec=s,
            status=status or DockerDeploymentStatus(update_revision="web-newhash"),
            generation=1,
            name="web",
            update_hash=NEW,
            update_revision="web-newhash",
            replicas=tuple(replicas),
            hosts=hosts,
            host_ports=ports,
            now=now,
        )
    )


def condition(plan: Plan, type_: str) -> tuple[str, str] | None:
    found = next((c for c in plan.status.conditions if c.type == type_), None)
    return (found.status.value, found.reason) if found is not None else None


def test_scaling_up_spreads_over_the_eligible_hosts() -> None:
    plan = run(spec(), [])
    assert sorted(h or "" for h in plan.create) == ["a", "a", "b", "b"]
    plan = run(spec(), [replica("r1", host="a"), replica("r2", host="a")])
    assert sorted(h or "" for h in plan.create) == ["b", "b"], "the emptier host first"


def test_hostref_templates_create_without_choosing_a_host() -> None:
    s = spec(template={"metadata": {"labels": {"app": "web"}}, "spec": {"image": "x", "hostRef": {"name": "h"}}})
    assert run(s, [], hosts=None).create == (None, None, None, None)


def test_scaling_down_removes_the_cheapest_replicas_first() -> None:
    replicas = [replica("ok1"), replica("ok2", host="b"), replica("sick", ready=False), replica("young", ready_for=5),
                replica("ok3", host="b"), replica("ok4")]  # fmt: skip
    plan = run(spec(replicas=4), replicas)
    assert plan.delete[0] == "sick", "not ready goes first"
    assert plan.delete[1] == "young", "then ready the shortest time"
    assert plan.create == ()


def test_a_rolling_update_surges_one_and_removes_one_at_a_time_with_the_defaults() -> None:
    old = [replica(f"old{i}", hash_=OLD, host="ab"[i % 2]) for i in range(4)]
    plan = run(spec(), old, status=DockerDeploymentStatus(update_revision="web-oldhash", updated_replicas=4))
    assert (len(plan.create), len(plan.delete)) == (1, 1)
    assert condition(plan, "Progressing") == ("True", "NewReplicaSetCreated")


def test_new_replicas_that_never_become_ready_stall_the_rollout_with_the_old_ones_serving() -> None:
    old = [replica(f"old{i}", hash_=OLD) for i in range(3)]
    new = [replica(f"new{i}", ready=False) for i in range(2)]
    started = T0 - datetime.timedelta(seconds=60)
    status = DockerDeploymentStatus(update_revision="web-newhash", updated_replicas=2, available_replicas=3,
                                    ready_replicas=3, last_progress_time=started)  # fmt: skip
    plan = run(spec(), old + new, status=status)
    assert (plan.create, plan.delete) == ((), ()), "surge used up, and no old replica may go"
    assert condition(plan, "Available") == ("True", "MinimumReplicasAvailable")
    assert condition(plan, "Progressing") is None or condition(plan, "Progressing") != (
        "False",
        "ProgressDeadlineExceeded",
    )
    assert plan.requeue_after == pytest.approx(600 - 60 + 0.5)
    late = run(spec(), old + new, status=status, now=started + datetime.timedelta(seconds=601))
    assert condition(late, "Progressing") == ("False", "ProgressDeadlineExceeded")
    assert [e.reason for e in late.events] == ["ProgressDeadlineExceeded"]
    assert (late.create, late.delete) == ((), ()), "the old replicas keep serving"


def test_a_finished_rollout_is_complete() -> None:
    plan = run(spec(), [replica(f"r{i}", host="ab"[i % 2]) for i in range(4)])
    assert condition(plan, "Progressing") == ("True", "NewReplicaSetAvailable")
    assert plan.status.current_revision == "web-newhash"
    assert (plan.status.ready, plan.status.updated_replicas, plan.status.available_replicas) == ("4/4", 4, 4)
    assert plan.status.selector == "app=web"


def test_min_ready_seconds_holds_availability_back_and_the_deadline_of_maturity_requeues() -> None:
    plan = run(spec(minReadySeconds=30), [replica("young", ready_for=10)] + [replica(f"r{i}") for i in range(3)])
    assert plan.status.available_replicas == 3
    assert plan.requeue_after == pytest.approx(20)


def test_host_ports_never_share_a_host_and_the_condition_says_why() -> None:
    ports = frozenset({(8080, "TCP", "")})
    plan = run(spec(replicas=3), [], ports=ports)
    assert sorted(h or "" for h in plan.create) == ["a", "b"]
    assert condition(plan, "ReplicaFailure") == ("True", "FailedScheduling")
    assert [e.reason for e in plan.events] == ["FailedScheduling"]
    taken = (HostSlot("a", True, frozenset({(8080, "TCP", "")})), HostSlot("b", True))
    assert run(spec(replicas=1), [], ports=ports, hosts=taken).create == ("b",)


def test_max_skew_limits_how_uneven_placement_may_get() -> None:
    ports = frozenset({(8080, "TCP", "")})
    hosts = (HostSlot("a", True), HostSlot("b", True, frozenset({(8080, "TCP", "")})))
    # b is blocked by someone else's port; a already has one of ours: a second there would make the skew 2.
    plan = run(spec(replicas=2), [replica("r1", host="a")], ports=ports, hosts=hosts)
    assert plan.create == ()
    relaxed = run(spec(replicas=2, spread={"maxSkew": 2}), [replica("r1", host="a")], hosts=hosts)
    assert relaxed.create == ("b",), "without a port clash b is simply the emptier host"


def test_a_replica_whose_host_stays_unreachable_is_replaced_after_the_tolerance() -> None:
    lost = replica("lost", host="b", unreachable_since=T0 - datetime.timedelta(seconds=100))
    others = [replica(f"r{i}", host="a") for i in range(3)]
    early = run(spec(), [*others, lost])
    assert (early.evict, early.create) == ((), ())
    assert early.requeue_after == pytest.approx(200)
    later = run(spec(), [*others, lost], now=T0 + datetime.timedelta(seconds=201),
                hosts=(HostSlot("a", True), HostSlot("b", False)))  # fmt: skip
    assert later.evict == ("lost",)
    assert later.create == ("a",), "replaced on a reachable host"
    assert later.delete == (), "the old copy stays until its host is back"
    back = run(spec(), [*others, replica("lost", host="b", evicted=True), replica("new", host="a")])
    assert back.delete == ("lost",), "its host answers again: now it can be removed"


def test_recreate_removes_all_old_replicas_before_creating_new_ones() -> None:
    s = spec(strategy={"type": "Recreate"})
    old = [replica(f"old{i}", hash_=OLD) for i in range(4)]
    plan = run(s, old)
    assert (len(plan.delete), plan.create) == (4, ())
    going = [replica(f"old{i}", hash_=OLD, deleting=True) for i in range(2)]
    assert run(s, going).create == (), "not while an old one is still being removed"
    assert len(run(s, []).create) == 4


def test_a_paused_deployment_scales_but_does_not_roll_out() -> None:
    old = [replica(f"old{i}", hash_=OLD) for i in range(4)]
    plan = run(spec(paused=True), old)
    assert (plan.create, plan.delete) == ((), ())
    assert condition(plan, "Progressing") == ("Unknown", "DeploymentPaused")
    assert len(run(spec(paused=True, replicas=6), [replica(f"r{i}") for i in range(4)]).create) == 2


def test_no_reachable_host_is_a_replica_failure() -> None:
    plan = run(spec(replicas=1), [], hosts=(HostSlot("a", False),))
    assert plan.create == ()
    assert condition(plan, "ReplicaFailure") == ("True", "FailedScheduling")


def test_replicas_on_a_host_that_is_gone_are_replaced() -> None:
    plan = run(spec(replicas=2), [replica("r1"), replica("r2", host="b", lost_host=True)])
    assert plan.delete == ("r2",)
    assert len(plan.create) == 1


def test_scaling_down_keeps_the_spread() -> None:
    replicas = [replica(f"a{i}", host="a") for i in range(3)] + [replica(f"b{i}", host="b") for i in range(3)]
    plan = run(spec(replicas=2), replicas)
    remaining = [r.host for r in replicas if r.name not in plan.delete]
    assert sorted(h or "" for h in remaining) == ["a", "b"]
