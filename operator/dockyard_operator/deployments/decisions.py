"""What to do about one DockerDeployment, decided without I/O: its replicas and hosts in, a Plan out.

Replicas are DockerContainers the DockerDeployment owns. Each carries the template hash of the revision it was made
from; "new" replicas are the current template's, "old" every other. One decision:

1. replicas whose host stayed unreachable longer than hostFailureToleranceSeconds are *evicted*: marked, no longer
   counted, and replaced elsewhere; an evicted replica is deleted once its host is back (or gone), so the old
   copy never runs unmanaged;
2. replicas placed by the deployment on a host that is gone or being deleted are deleted and replaced;
3. the rollout step (rollout.py): plain scaling when only the current revision exists; otherwise RollingUpdate's
   surge/unavailable arithmetic, or Recreate;
4. placement of new replicas over the eligible, reachable hosts: the host with the fewest replicas of this
   deployment, never one where a host port the template publishes is taken, never beyond spread.maxSkew;
5. the status, and the conditions Available, Progressing (ProgressDeadlineExceeded) and ReplicaFailure, with the
   reasons apps/v1 Deployments use, so tooling that reads Deployments reads these too.
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dockyard_operator.api.common import ConditionStatus
from dockyard_operator.api.dockerdeployment import (
    DockerDeploymentSpec,
    DockerDeploymentStatus,
    StrategyType,
    selector_string,
)
from dockyard_operator.deployments import rollout
from dockyard_operator.runtime.conditions import Conditions
from dockyard_operator.runtime.plans import Event

#: Scheduled=False reasons that mean "the host this replica was given is no more": replace it.
HOST_LOST_REASONS = frozenset(
    {"HostNotFound", "HostDeleting", "OtherOperatorClass", "NamespaceNotAllowed", "HostInvalid"}
)

HostPort = tuple[int, str, str]  # (hostPort, protocol, hostIP or "")


@dataclass(frozen=True)
class Replica:
    """One DockerContainer owned by the DockerDeployment, as the decision sees it."""

    name: str
    uid: str
    template_hash: str | None
    host: str | None
    created: datetime.datetime
    ready: bool = False
    ready_since: datetime.datetime | None = None
    deleting: bool = False
    evicted: bool = False
    unreachable_since: datetime.datetime | None = None
    lost_host: bool = False
    """Its host is gone or being deleted (Scheduled=False with one of HOST_LOST_REASONS)."""


@dataclass(frozen=True)
class HostSlot:
    """A host the template could place replicas on."""

    name: str
    reachable: bool
    taken_ports: frozenset[HostPort] = frozenset()
    """Host ports used by DockerContainers already placed there (any owner)."""


@dataclass(frozen=True)
class Facts:
    spec: DockerDeploymentSpec
    status: DockerDeploymentStatus
    generation: int | None
    name: str
    update_hash: str
    update_revision: str
    replicas: tuple[Replica, ...]
    hosts: tuple[HostSlot, ...] | None
    """The eligible hosts when the template places by hostSelector; None with hostRef (every replica goes there)."""
    host_ports: frozenset[HostPort]
    """The host ports the template publishes."""
    now: datetime.datetime


@dataclass(frozen=True)
class Plan:
    create: tuple[str | None, ...] = ()
    """One entry per replica to create: the host chosen for it (None: the template's own hostRef)."""
    delete: tuple[str, ...] = ()
    evict: tuple[str, ...] = ()
    status: DockerDeploymentStatus = field(default_factory=DockerDeploymentStatus)
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None


def available(replica: Replica, *, min_ready_seconds: int, now: datetime.datetime) -> bool:
    """Ready for at least minReadySeconds (a replica with health checks is Ready only while healthy)."""
    if not replica.ready:
        return False
    if min_ready_seconds == 0:
        return True
    return replica.ready_since is not None and (now - replica.ready_since).total_seconds() >= min_ready_seconds


def removal_order(replicas: Iterable[Replica], *, min_ready_seconds: int, now: datetime.datetime,
                  per_host: Counter[str]) -> list[Replica]:  # fmt: skip
    """The order replicas are removed in, cheapest first (a ReplicaSet's ActivePods ranking): not placed, then not
    ready, then not yet available, then on the host that has the most replicas *at that point* (so a scale-down
    keeps the spread), then ready the shortest time, newest."""
    remaining = list(replicas)
    counts = Counter(per_host)
    ordered: list[Replica] = []
    while remaining:

        def rank(r: Replica) -> tuple[object, ...]:
            since = r.ready_since or r.created
            return (
                r.host is not None,
                r.ready,
                available(r, min_ready_seconds=min_ready_seconds, now=now),
                -counts[r.host or ""],
                -since.timestamp(),
                -r.created.timestamp(),
                r.name,
            )

        pick = min(remaining, key=rank)
        remaining.remove(pick)
        ordered.append(pick)
        counts[pick.host or ""] -= 1
    return ordered


def decide(f: Facts) -> Plan:
    spec, now = f.spec, f.now
    tolerance = spec.host_failure_tolerance_seconds
    events: list[Event] = []
    requeue: list[float] = []

    # 1. Host failure: evict replicas cut off for too long; delete evicted ones once their host answers again.
    evict: list[str] = []
    delete: list[str] = []
    for r in f.replicas:
        if r.deleting:
            continue
        if r.evicted:
            if r.unreachable_since is None or r.lost_host:
                delete.append(r.name)  # back (or gone for good): the old copy can be removed now
            continue
        if r.unreachable_since is not None:
            waited = (now - r.unreachable_since).total_seconds()
            if waited >= tolerance:
                evict.append(r.name)
                note = f"replica {r.name}: host {r.host} unreachable for {waited:.0f}s; replacing it elsewhere"
                events.append(Event("ReplicaEvicted", note, warning=True))
            else:
                requeue.append(tolerance - waited)
    # 2. Replicas the deployment placed on a host that is no more: replace them.
    placed_by_us = f.hosts is not None
    lost = [r for r in f.replicas if placed_by_us and r.lost_host and not r.deleting and not r.evicted]
    delete += [r.name for r in lost]

    gone = set(evict) | {r.name for r in lost}
    live = [r for r in f.replicas if not r.deleting and not r.evicted and r.name not in gone]
    new = [r for r in live if r.template_hash == f.update_hash]
    old = [r for r in live if r.template_hash != f.update_hash]
    ready_for = spec.min_ready_seconds

    def is_available(r: Replica) -> bool:
        return available(r, min_ready_seconds=ready_for, now=now)

    counts = rollout.Counts(
        desired=spec.replicas,
        new=len(new),
        new_available=sum(is_available(r) for r in new),
        old=len(old),
        old_available=sum(is_available(r) for r in old),
    )
    rolling = spec.strategy.effective_rolling_update
    surge, unavailable = rollout.resolve_fenceposts(rolling.max_surge, rolling.max_unavailable, spec.replicas)
    per_host = Counter(r.host or "" for r in live)

    # 3. The rollout step.
    old_going = sum(1 for r in f.replicas if r.deleting and r.template_hash != f.update_hash)
    recreate = spec.strategy.type is StrategyType.RECREATE
    if spec.paused:
        # Paused: no rollout; the current revision is only scaled (as a paused Deployment still scales).
        step = rollout.Step(max(0, spec.replicas - len(new)) if not old else 0, 0, 0)
        excess_new = max(0, len(new) - spec.replicas) if not old else 0
    elif recreate and (old or old_going):
        step = rollout.recreate_step(counts, old_remaining=old_going)
        excess_new = 0
    elif not old:
        step = rollout.Step(max(0, spec.replicas - len(new)), 0, 0)
        excess_new = max(0, len(new) - spec.replicas)
    else:
        step = rollout.rolling_step(counts, surge=surge, unavailable=unavailable)
        excess_new = max(0, len(new) - spec.replicas)
    order = removal_order(old, min_ready_seconds=ready_for, now=now, per_host=per_host)
    delete += [r.name for r in order[: step.unhealthy_old + step.available_old]]  # unavailable ones rank first
    if excess_new:
        delete += [r.name for r in removal_order(new, min_ready_seconds=ready_for, now=now,
                                                  per_host=per_host)[:excess_new]]  # fmt: skip

    # 4. Placement of what the step creates.
    create: list[str | None] = []
    blocked = ""
    if step.scale_up:
        if f.hosts is None:
            create = [None] * step.scale_up
        else:
            create, blocked = _place(f, step.scale_up, [r for r in live if r.name not in delete])

    # Minimum readiness matures with time alone: look again when the next replica will have been Ready long
    # enough to count as available.
    for r in live:
        if r.ready and r.ready_since is not None and not is_available(r):
            requeue.append(ready_for - (now - r.ready_since).total_seconds())

    status, more_events, deadline_in = _status(f, new, live, counts, unavailable, create, delete, blocked)
    events += more_events
    if deadline_in is not None:
        requeue.append(deadline_in)
    return Plan(
        create=tuple(create),
        delete=tuple(delete),
        evict=tuple(evict),
        status=status,
        events=tuple(events),
        requeue_after=max(0.5, min(requeue)) if requeue else None,
    )


def _place(f: Facts, count: int, staying: Sequence[Replica]) -> tuple[list[str | None], str]:
    """Hosts for `count` new replicas: fewest of ours first, no host-port clash, within maxSkew."""
    assert f.hosts is not None
    slots = [h for h in f.hosts if h.reachable]
    if not slots:
        return [], "no reachable DockerHost matches the template's hostSelector"
    load = Counter(r.host for r in staying if r.host is not None)
    taken = {h.name: set(h.taken_ports) for h in slots}
    chosen: list[str | None] = []
    why = ""
    for _ in range(count):
        lowest = min(load[h.name] for h in slots)
        candidates = [h for h in slots if not (f.host_ports & taken[h.name])]
        if not candidates:
            why = f"every eligible host already publishes host port(s) {_ports(f.host_ports)}"
            break
        best = min(candidates, key=lambda h: (load[h.name], h.name))
        if load[best.name] + 1 - lowest > f.spec.spread.max_skew:
            why = (
                f"placing another replica on {best.name} would exceed spread.maxSkew {f.spec.spread.max_skew} "
                f"(the other hosts cannot take one: host port(s) {_ports(f.host_ports)})"
            )
            break
        chosen.append(best.name)
        load[best.name] += 1
        taken[best.name] |= f.host_ports
    return chosen, why


def _ports(ports: Iterable[HostPort]) -> str:
    return ", ".join(f"{p}/{proto}" for p, proto, _ in sorted(ports)) or "none"


def _status(
    f: Facts,
    new: list[Replica],
    live: list[Replica],
    counts: rollout.Counts,
    unavailable: int,
    create: list[str | None],
    delete: list[str],
    blocked: str,
) -> tuple[DockerDeploymentStatus, list[Event], float | None]:
    spec, previous, now = f.spec, f.status, f.now
    desired = spec.replicas
    ready = sum(r.ready for r in live)
    avail = counts.available
    c = Conditions(previous.conditions, generation=f.generation, now=now)
    events: list[Event] = []

    max_unavailable = rollout.max_unavailable(
        unavailable, desired, rolling=spec.strategy.type is StrategyType.ROLLING_UPDATE
    )
    if avail >= desired - max_unavailable:
        c.set(
            "Available",
            ConditionStatus.TRUE,
            "MinimumReplicasAvailable",
            "the DockerDeployment has minimum availability",
        )
    else:
        c.set("Available", ConditionStatus.FALSE, "MinimumReplicasUnavailable", "it does not have minimum availability")

    if blocked:
        before = c.get("ReplicaFailure")
        if before is None or before.status is not ConditionStatus.TRUE or before.message != blocked:
            events.append(Event("FailedScheduling", blocked, warning=True))
        c.set("ReplicaFailure", ConditionStatus.TRUE, "FailedScheduling", blocked)
    else:
        c.remove("ReplicaFailure")

    complete = len(new) == desired and len(live) == desired and counts.new_available == desired
    new_revision = previous.update_revision != f.update_revision
    progressed = (
        new_revision
        or bool(create)
        or bool(delete)
        or len(new) > previous.updated_replicas
        or avail > previous.available_replicas
        or ready > previous.ready_replicas
    )
    last_progress = previous.last_progress_time
    deadline_in: float | None = None
    if spec.paused:
        c.set("Progressing", ConditionStatus.UNKNOWN, "DeploymentPaused", "the DockerDeployment is paused")
    elif complete:
        c.set("Progressing", ConditionStatus.TRUE, "NewReplicaSetAvailable",
              f"DockerDeployment {f.name} has successfully progressed (revision {f.update_revision})")  # fmt: skip
        last_progress = now if progressed or last_progress is None else last_progress
    elif progressed or last_progress is None or c.reason("Progressing") == "DeploymentPaused":
        reason = "NewReplicaSetCreated" if new_revision else "ReplicaSetUpdated"
        c.set("Progressing", ConditionStatus.TRUE, reason, f"rolling out {f.update_revision}")
        last_progress = now
        deadline_in = float(spec.progress_deadline_seconds)
    else:
        stuck_for = (now - last_progress).total_seconds()
        if stuck_for > spec.progress_deadline_seconds:
            if c.reason("Progressing") != "ProgressDeadlineExceeded":
                note = f"DockerDeployment {f.name} has not made progress for {spec.progress_deadline_seconds}s"
                events.append(Event("ProgressDeadlineExceeded", note, warning=True))
            message = f"revision {f.update_revision} has timed out progressing"
            c.set("Progressing", ConditionStatus.FALSE, "ProgressDeadlineExceeded", message)
        else:
            deadline_in = spec.progress_deadline_seconds - stuck_for + 0.5

    current_revision = f.update_revision if complete else (previous.current_revision or f.update_revision)
    status = previous.model_copy(
        update={
            "observed_generation": f.generation,
            "replicas": len(live),
            "updated_replicas": len(new),
            "ready_replicas": ready,
            "available_replicas": avail,
            "unavailable_replicas": max(0, desired - avail),
            "selector": selector_string(spec.selector),
            "ready": f"{ready}/{desired}",
            "current_revision": current_revision,
            "update_revision": f.update_revision,
            "last_progress_time": last_progress,
            "conditions": c.result,
        }
    )
    return status, events, deadline_in
