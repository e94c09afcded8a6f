"""What to do about one DockerContainer, decided without any I/O: facts in, a Plan out.

The reconciler gathers the facts (the object, its host, the containers carrying its uid label there and the inspect
of the one it keeps), calls :func:`decide`, performs the plan's actions, then looks again and decides again until a
plan has no actions left; that last plan's status is written. So every rule below is a function of its inputs and
is tested as a table of cases (tests/operator/containers/test_decisions.py), the way the kubelet's
`computePodActions` is.

The words in status follow the kubelet: ErrImagePull then ImagePullBackOff, RunContainerError then
CrashLoopBackOff, CreateContainerConfigError, Completed and Error. A step that fails is retried after a back-off of
10 s doubling to 5 min, and each distinct failure is one Warning Event (the recorder adds a count to repeats).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard_operator.api import labels as label_keys
from dockyard_operator.api.common import ConditionStatus
from dockyard_operator.api.dockercontainer import (
    ContainerPhase,
    ContainerReason,
    DockerContainerSpec,
    DockerContainerStatus,
    Drift,
    DriftPolicy,
    EventReason,
    RestartPolicy,
)
from dockyard_operator.api.dockerhost import DockerHostSpec
from dockyard_operator.containers import drift as drift_mod
from dockyard_operator.containers import observing
from dockyard_operator.containers.actions import (
    Action,
    CreateContainer,
    EnsureImage,
    RemoveContainer,
    RestartContainer,
    StartContainer,
)
from dockyard_operator.containers.backoffs import UNSTARTED, Failure, FailureKind, Memory, delay_of, next_back_off
from dockyard_operator.containers.desired import DesiredContainer
from dockyard_operator.containers.errors import ContainersError, MissingReferenceError
from dockyard_operator.runtime.conditions import Conditions
from dockyard_operator.runtime.plans import Event

#: After a step fails, look again this soon: the status then turns from ErrImagePull/RunContainerError to the
#: back-off word with the delay in its message, as `kubectl get pods` users expect to see.
FRESH_FAILURE_REQUEUE = 1.0

_BACK_OFF_REASONS: dict[FailureKind, ContainerReason] = {
    FailureKind.PULL: ContainerReason.IMAGE_PULL_BACK_OFF,
    FailureKind.NEVER_PULL: ContainerReason.ERR_IMAGE_NEVER_PULL,
    FailureKind.CREATE: ContainerReason.CREATE_CONTAINER_ERROR,
    FailureKind.NAME_CONFLICT: ContainerReason.NAME_CONFLICT,
    FailureKind.START: ContainerReason.CRASH_LOOP_BACK_OFF,
}
_FRESH_REASONS: dict[FailureKind, ContainerReason] = {
    FailureKind.PULL: ContainerReason.ERR_IMAGE_PULL,
    FailureKind.NEVER_PULL: ContainerReason.ERR_IMAGE_NEVER_PULL,
    FailureKind.CREATE: ContainerReason.CREATE_CONTAINER_ERROR,
    FailureKind.NAME_CONFLICT: ContainerReason.NAME_CONFLICT,
    FailureKind.START: ContainerReason.RUN_CONTAINER_ERROR,
}
# Failures that happen before a container exists.
_BEFORE_CREATE = frozenset({FailureKind.PULL, FailureKind.NEVER_PULL, FailureKind.CREATE, FailureKind.NAME_CONFLICT})


@dataclass(frozen=True)
class BackOffSettings:
    """The kubelet's numbers: 10 s doubling to 5 min, for failed steps, crash loops and unhealthy restarts."""

    initial: float = 10.0
    cap: float = 300.0
    unhealthy_initial: float = 10.0
    unhealthy_cap: float = 300.0


@dataclass(frozen=True)
class Found:
    """A container carrying the object's uid label on its host, as `GET /containers/json` lists it."""

    id: str
    created: int
    spec_hash: str | None
    running: bool

    @classmethod
    def from_list(cls, item: Mapping[str, Any]) -> Found:
        return cls(
            id=str(item["Id"]),
            created=int(item.get("Created") or 0),
            spec_hash=(item.get("Labels") or {}).get(label_keys.SPEC_HASH),
            running=item.get("State") == "running",
        )


@dataclass(frozen=True)
class Situation:
    """Everything :func:`decide` looks at."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    spec: DockerContainerSpec
    status: DockerContainerStatus
    """The status so far: host, Scheduled and HostReachable already decided by the caller."""
    host: str
    host_spec: DockerHostSpec
    desired: DesiredContainer | None
    desired_error: ContainersError | None
    found: tuple[Found, ...]
    inspect: Mapping[str, Any] | None
    """The inspect of the container :func:`keeper` chose, when there is one."""
    memory: Memory
    now: datetime.datetime
    monotonic: float
    failure: Failure | None = None
    """A step of this same reconcile that just failed."""
    back_off: BackOffSettings = field(default_factory=BackOffSettings)


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    status: DockerContainerStatus
    events: tuple[Event, ...]
    """Recorded once the actions succeed (or at once when there are none)."""
    memory: Memory
    requeue_after: float | None = None


def keeper(found: Sequence[Found], spec_hash: str | None) -> tuple[Found | None, tuple[Found, ...]]:
    """The container to keep and the extra ones to remove.

    More than one container with our uid can only follow a crash between create and record: keep the newest one
    carrying the wanted spec hash (else the newest).
    """
    ordered = sorted(found, key=lambda f: (f.spec_hash == spec_hash, f.created, f.id))
    if not ordered:
        return None, ()
    return ordered[-1], tuple(ordered[:-1])


class _Builder:
    """Accumulates one decision's status, events and memory."""

    def __init__(self, s: Situation, memory: Memory) -> None:
        self.s = s
        self.memory = memory
        self.conditions = Conditions(s.status.conditions, generation=s.generation, now=s.now)
        self.events: list[Event] = []
        self.fields: dict[str, Any] = {}

    def event(self, reason: EventReason, note: str, *, warning: bool = False) -> None:
        self.events.append(Event(reason.value, note, warning))

    def event_once(self, reason: EventReason, note: str, *, previous_ready_reason: str) -> None:
        """A Warning Event only when the Ready reason changes to this failure (not on every look)."""
        if self.conditions.reason("Ready") != previous_ready_reason:
            self.event(reason, note, warning=True)

    def ready(self, status: ConditionStatus | str, reason: str, message: str) -> None:
        self.conditions.set("Ready", status, reason, message)

    def plan(
        self,
        phase: ContainerPhase,
        reason: ContainerReason,
        *,
        actions: Sequence[Action] = (),
        requeue_after: float | None = None,
    ) -> Plan:
        status = self.s.status.model_copy(
            update={
                **self.fields,
                "phase": phase,
                "reason": reason,
                "observed_generation": self.s.generation,
                "conditions": self.conditions.result,
            }
        )
        return Plan(tuple(actions), status, tuple(self.events), self.memory, requeue_after)


def _record_failure(s: Situation, b: _Builder, failure: Failure) -> None:
    """Remember a failed step: its back-off, its Warning Event, the fresh reason for the status."""
    previous = b.memory.failing
    prior = previous[1] if previous is not None and previous[0] is failure.kind else None
    back_off = next_back_off(prior, now=s.monotonic, initial=s.back_off.initial, cap=s.back_off.cap)
    spec_hash = s.desired.spec_hash if s.desired is not None else ""
    b.memory = b.memory.with_(failing=(failure.kind, back_off, failure.message, spec_hash), recreate_for=())
    if failure.kind is FailureKind.START and prior is not None:
        # A retry of a start that failed before: the kubelet counts each new attempt as a restart, whether or
        # not it succeeds (the successful case is counted where the start is planned).
        b.fields["restart_count"] = s.status.restart_count + 1
    image = s.spec.image
    notes = {
        FailureKind.PULL: f"Failed to pull image {image!r}: {failure.message}",
        FailureKind.NEVER_PULL: f"Container image {image!r} is not present with pull policy of Never",
        FailureKind.CREATE: f"Failed to create container: {failure.message}",
        FailureKind.NAME_CONFLICT: failure.message,
        FailureKind.START: f"Failed to start container: {failure.message}",
    }
    b.event(EventReason.FAILED, notes[failure.kind], warning=True)


def _blocked(s: Situation, b: _Builder, kinds: frozenset[FailureKind]) -> tuple[FailureKind, float, str] | None:
    """The failing step among `kinds` that is still backing off: (kind, seconds left, last message)."""
    failing = b.memory.failing
    if failing is None or failing[0] not in kinds:
        return None
    kind, back_off, message, _ = failing
    left = back_off.waiting(s.monotonic)
    return (kind, left, message) if left > 0 else None


def _back_off_plan(
    s: Situation, b: _Builder, kind: FailureKind, left: float, message: str, *, fresh: bool, phase: ContainerPhase
) -> Plan:
    failing = b.memory.failing
    assert failing is not None
    delay = delay_of(failing[1])
    reason = _FRESH_REASONS[kind] if fresh else _BACK_OFF_REASONS[kind]
    if kind is FailureKind.PULL:
        text = f"Back-off {delay:.0f}s pulling image {s.spec.image!r}: {message}"
        if not fresh:
            b.event(EventReason.BACK_OFF, f"Back-off pulling image {s.spec.image!r}")
    elif kind is FailureKind.START:
        text = f"back-off {delay:.0f}s restarting failed container: {message}"
        if not fresh:
            b.event(EventReason.BACK_OFF, "Back-off restarting failed container", warning=True)
    else:
        text = f"{message} (next attempt in {left:.0f}s)"
    b.ready(ConditionStatus.FALSE, reason.value, text)
    return b.plan(phase, reason, requeue_after=FRESH_FAILURE_REQUEUE if fresh else left)


def decide(s: Situation) -> Plan:
    """The next step for a container placed on a reachable host (see the module docstring)."""
    b = _Builder(s, s.memory)
    if finished_for_good(s):
        return _finished(s, b)
    fresh = s.failure is not None
    if s.failure is not None:
        _record_failure(s, b, s.failure)

    if s.desired_error is not None or s.desired is None:
        error = s.desired_error
        missing = isinstance(error, MissingReferenceError)
        reason = ContainerReason.CREATE_CONTAINER_CONFIG_ERROR if missing else ContainerReason.INVALID_SPEC
        message = str(error) if error is not None else "the desired container could not be built"
        b.event_once(EventReason.FAILED, message, previous_ready_reason=reason.value)
        b.ready(ConditionStatus.FALSE, reason.value, message)
        # A change of the Secret/ConfigMap or of the spec triggers the next try; a running container stays.
        return b.plan(ContainerPhase.PENDING if missing else ContainerPhase.FAILED, reason)
    want = s.desired
    if b.memory.failing is not None and b.memory.failing[3] != want.spec_hash:
        b.memory = b.memory.with_(failing=None)  # the spec changed since: the new one gets tried at once

    # A hostPath bind is root on the host (think / or docker.sock): only paths its DockerHost allows.
    denied = sorted(
        v.host_path.path for v in s.spec.volumes if v.host_path and not s.host_spec.allows_host_path(v.host_path.path)
    )
    if denied:
        message = f"DockerHost {s.host} does not allow hostPath {', '.join(denied)} (spec.allowedHostPaths)"
        reason = ContainerReason.HOST_PATH_NOT_ALLOWED
        b.event_once(EventReason.FAILED, message, previous_ready_reason=reason.value)
        b.ready(ConditionStatus.FALSE, reason.value, message)
        return b.plan(ContainerPhase.FAILED, reason)

    current, extras = keeper(s.found, want.spec_hash)
    grace = s.spec.stop_grace_period_seconds
    if extras:
        removals = [
            RemoveContainer(s.host, f.id, f.running, grace, "a duplicate of this object's container") for f in extras
        ]
        return b.plan(ContainerPhase(s.status.phase or ContainerPhase.PENDING), _reason(s), actions=removals)

    if current is None or s.inspect is None:
        return _create(s, b, want, fresh=fresh)
    return _existing(s, b, want, current, s.inspect, fresh=fresh)


def finished_for_good(s: Situation) -> bool:
    """A Pod's terminal phases: under Never, Succeeded and Failed are final; under OnFailure, Succeeded is.

    Until the spec changes (a new generation), nothing is created, started or recreated again — not when the
    exited container is removed from the host (`docker container prune`), not when a referenced Secret changes,
    not when the host starts allowing a path. A DockerJob's finished attempt must never run a second time.
    """
    if s.status.observed_generation != s.generation:
        return False
    policy = s.spec.restart_policy
    if s.status.phase is ContainerPhase.SUCCEEDED:
        return policy in (RestartPolicy.NEVER, RestartPolicy.ON_FAILURE)
    return s.status.phase is ContainerPhase.FAILED and policy is RestartPolicy.NEVER


def _finished(s: Situation, b: _Builder) -> Plan:
    """Report what is left of a finished container; act on nothing."""
    phase = ContainerPhase(s.status.phase or ContainerPhase.FAILED)
    current, _ = keeper(s.found, None)
    if current is not None and s.inspect is not None:
        seen = observing.observe(s.inspect)
        _observed_fields(b, seen, s.status.restart_count, s.status.last_exit_code)
    else:
        b.fields.update(container_id=None, state=None, health=None, ip=None)
    return b.plan(phase, _reason(s))


def _reason(s: Situation) -> ContainerReason:
    return s.status.reason or ContainerReason.PENDING


def _create(s: Situation, b: _Builder, want: DesiredContainer, *, fresh: bool) -> Plan:
    blocked = _blocked(s, b, _BEFORE_CREATE)
    if blocked is not None:
        kind, left, message = blocked
        phase = ContainerPhase.FAILED if kind is FailureKind.NAME_CONFLICT else ContainerPhase.PENDING
        if s.status.container_id and not b.memory.recreate_for:
            b.fields.update(container_id=None, state=None, health=None, ip=None, started_at=None, finished_at=None)
        return _back_off_plan(s, b, kind, left, message, fresh=fresh, phase=phase)
    actions: list[Action] = []
    recreating = bool(b.memory.recreate_for)
    if not recreating:
        actions.append(EnsureImage(want.image, s.spec.effective_image_pull_policy))
    actions.append(CreateContainer(s.host))
    if b.memory.recreate_for == (UNSTARTED,):
        note = "created again: the container had been created but never started (its files may have been missing)"
        b.event(EventReason.RECREATED, note)
    elif recreating:
        b.event(EventReason.RECREATED, "recreated because of drift in: " + ", ".join(b.memory.recreate_for))
    elif s.status.container_id:
        # Someone removed our container behind our back and we make a new one: that is a restart.
        b.fields["restart_count"] = s.status.restart_count + 1
        b.event(EventReason.RESTARTED, "the container was gone from its host and was created again")
    b.memory = b.memory.with_(recreate_for=())
    b.fields.update(drift=None)
    b.conditions.set("Drifted", ConditionStatus.FALSE, "InSync", "the container matches the spec")
    b.ready(ConditionStatus.FALSE, ContainerReason.CONTAINER_CREATING.value, "creating the container")
    return b.plan(ContainerPhase.CREATING, ContainerReason.CONTAINER_CREATING, actions=actions)


def _existing(
    s: Situation, b: _Builder, want: DesiredContainer, current: Found, inspect: Mapping[str, Any], *, fresh: bool
) -> Plan:
    spec = s.spec
    grace = spec.stop_grace_period_seconds
    drifted = drift_mod.detect_drift(want, inspect)
    seen = observing.observe(inspect)
    pull_blocked = _blocked(s, b, frozenset({FailureKind.PULL, FailureKind.NEVER_PULL})) if drifted else None
    if drifted:
        if spec.drift_policy is DriftPolicy.ENFORCE and pull_blocked is None:
            # The new image first: a typo in a tag must not cost the running container.
            b.memory = b.memory.with_(recreate_for=drifted)
            actions: list[Action] = [
                EnsureImage(want.image, spec.effective_image_pull_policy),
                RemoveContainer(
                    s.host, current.id, seen.running, grace, "drift in " + ", ".join(drifted), keep_as_previous=True
                ),
            ]
            return b.plan(ContainerPhase(s.status.phase or ContainerPhase.RUNNING), _reason(s), actions=actions)
        since = (s.status.drift.since if s.status.drift is not None else None) or s.now
        b.fields["drift"] = Drift(fields=list(drifted), since=since)
        message = "differs from the spec: " + ", ".join(drifted)
        if pull_blocked is not None:
            # Enforce, but the new image cannot be pulled: the old container keeps serving meanwhile.
            message += f"; the new image cannot be pulled yet: {pull_blocked[2]}"
        b.conditions.set("Drifted", ConditionStatus.TRUE, "DriftDetected", message)
    else:
        b.fields["drift"] = None
        b.conditions.set("Drifted", ConditionStatus.FALSE, "InSync", "the container matches the spec")
        if b.memory.failing is not None and b.memory.failing[0] in _BEFORE_CREATE:
            b.memory = b.memory.with_(failing=None)  # the container exists as wanted: those steps succeeded

    restarts = int(b.fields.get("restart_count", s.status.restart_count))
    last_exit = s.status.last_exit_code
    if seen.state in observing.EXITED_STATES:
        last_exit = seen.exit_code
    policy = spec.restart_policy
    actions = []
    phase = observing.phase_for(seen, policy)
    reason = ContainerReason.RUNNING
    requeue: float | None = None
    ready_set = False

    # Docker's own restarts (restart policy) count too, as deltas of its RestartCount.
    docker_restarts = seen.docker_restart_count
    baseline_id, baseline = b.memory.restart_baseline or (seen.container_id, docker_restarts)
    if baseline_id == seen.container_id:
        restarts += max(0, docker_restarts - baseline)
    b.memory = b.memory.with_(restart_baseline=(seen.container_id, docker_restarts))

    start_blocked = _blocked(s, b, frozenset({FailureKind.START}))
    if seen.state == "created" and not seen.error and start_blocked is None and not fresh:
        # Created, never started, and not by this reconcile (it starts what it creates, and a failed start leaves
        # State.Error): an operator crash between create and start may have skipped the file copy. Make it again.
        b.memory = b.memory.with_(recreate_for=(UNSTARTED,))
        removal = RemoveContainer(s.host, seen.container_id, False, grace, "created but never started")
        return b.plan(ContainerPhase.CREATING, ContainerReason.CONTAINER_CREATING, actions=[removal])
    if seen.state == "created":
        if start_blocked is not None:
            kind, left, message = start_blocked
            return _finish_back_off(s, b, seen, restarts, last_exit, kind, left, message, fresh, ContainerPhase.PENDING)
        if b.memory.failing is not None and b.memory.failing[0] is FailureKind.START:
            restarts += 1  # a retry of a start that failed: the kubelet counts each new attempt as a restart
        actions.append(StartContainer(seen.container_id))
        reason = ContainerReason.CONTAINER_CREATING
    elif seen.state in observing.EXITED_STATES:
        should_start = policy is RestartPolicy.ALWAYS or (policy is RestartPolicy.ON_FAILURE and seen.exit_code != 0)
        if should_start and start_blocked is not None:
            # Starting it again failed (a host port taken since, say): the same back-off as a first start.
            kind, left, message = start_blocked
            return _finish_back_off(s, b, seen, restarts, last_exit, kind, left, message, fresh, phase)
        if should_start:
            crash = b.memory.crash
            if crash is not None and not crash.stale(s.monotonic, s.back_off.cap) and crash.waiting(s.monotonic) > 0:
                left = crash.waiting(s.monotonic)
                reason = ContainerReason.CRASH_LOOP_BACK_OFF
                b.event(EventReason.BACK_OFF, "Back-off restarting failed container", warning=True)
                message = (
                    f"back-off {delay_of(crash):.0f}s restarting failed container (exited with code {seen.exit_code})"
                )
                b.ready(ConditionStatus.FALSE, reason.value, message)
                ready_set = True
                requeue = left
            else:
                actions.append(StartContainer(seen.container_id))
                restarts += 1
                b.memory = b.memory.with_(
                    crash=next_back_off(crash, now=s.monotonic, initial=s.back_off.initial, cap=s.back_off.cap)
                )
                b.event(
                    EventReason.RESTARTED,
                    f"container had exited with code {seen.exit_code}; restartPolicy {policy.value}",
                )
        elif seen.oom_killed:
            reason = ContainerReason.OOM_KILLED
        else:
            reason = ContainerReason.COMPLETED if seen.exit_code == 0 else ContainerReason.ERROR
    elif seen.state == "restarting":
        reason = ContainerReason.CRASH_LOOP_BACK_OFF  # Docker's restart policy is backing off
        b.ready(
            ConditionStatus.FALSE,
            reason.value,
            f"Docker is restarting the container (exit code {seen.exit_code}, restarts {docker_restarts})",
        )
        ready_set = True
    elif seen.state == "paused":
        reason = ContainerReason.PAUSED
    elif seen.running and b.memory.failing is not None and b.memory.failing[0] is FailureKind.START:
        b.memory = b.memory.with_(failing=None)

    # Health: Docker reports it, but never acts on it; restartOnUnhealthy is ours to do, with back-off.
    if seen.health == "unhealthy" and seen.running:
        if s.status.health != "unhealthy":
            b.event(EventReason.UNHEALTHY, "the healthcheck is failing", warning=True)
        check = spec.health_check
        if check is not None and check.restart_on_unhealthy:
            unhealthy = b.memory.unhealthy
            if unhealthy is None or unhealthy.waiting(s.monotonic) <= 0:
                following = next_back_off(
                    unhealthy, now=s.monotonic, initial=s.back_off.unhealthy_initial, cap=s.back_off.unhealthy_cap
                )
                # The first restart happens at once; the back-off governs the ones after it.
                delay = delay_of(following)
                actions.append(RestartContainer(seen.container_id, grace))
                restarts += 1
                b.memory = b.memory.with_(unhealthy=following)
                b.event(EventReason.RESTARTED, f"restarted because it was unhealthy (next after {delay:.0f}s)")
                requeue = delay
            else:
                requeue = unhealthy.waiting(s.monotonic)
    elif seen.health == "healthy":
        b.memory = b.memory.with_(unhealthy=None)

    _observed_fields(b, seen, restarts, last_exit)
    if seen.health is None:
        b.conditions.set("Healthy", ConditionStatus.TRUE, "NoHealthCheck", "no healthcheck configured")
    elif seen.health == "healthy":
        b.conditions.set("Healthy", ConditionStatus.TRUE, "HealthCheckPassing", "the healthcheck passes")
    elif seen.health == "starting":
        b.conditions.set("Healthy", ConditionStatus.UNKNOWN, "HealthCheckStarting", "waiting for the first results")
    else:
        b.conditions.set("Healthy", ConditionStatus.FALSE, "HealthCheckFailing", "the healthcheck is failing")
    if not ready_set:
        # Docker says Running while paused; a paused container serves nothing.
        if observing.is_ready(seen) and seen.state != "paused":
            b.ready(
                ConditionStatus.TRUE, "Running", "the container is running" + (" and healthy" if seen.health else "")
            )
        elif seen.running and seen.state != "paused":
            b.ready(ConditionStatus.FALSE, "NotHealthy", f"the container is running but its health is {seen.health}")
        else:
            b.ready(ConditionStatus.FALSE, reason.value, f"the container is {seen.state} (exit code {seen.exit_code})")
    if pull_blocked is not None and spec.drift_policy is DriftPolicy.ENFORCE and not actions:
        kind, left, _ = pull_blocked
        reason = _FRESH_REASONS[kind] if fresh else _BACK_OFF_REASONS[kind]
        if not fresh and kind is FailureKind.PULL:
            b.event(EventReason.BACK_OFF, f"Back-off pulling image {s.spec.image!r}")
        requeue = FRESH_FAILURE_REQUEUE if fresh else min(left, requeue if requeue is not None else left)
    return b.plan(phase, reason, actions=actions, requeue_after=requeue)


def _finish_back_off(
    s: Situation,
    b: _Builder,
    seen: observing.Observed,
    restarts: int,
    last_exit: int | None,
    kind: FailureKind,
    left: float,
    message: str,
    fresh: bool,
    phase: ContainerPhase,
) -> Plan:
    """A container whose start keeps failing: report it with the back-off."""
    _observed_fields(b, seen, restarts, last_exit)
    return _back_off_plan(s, b, kind, left, message, fresh=fresh, phase=phase)


def _observed_fields(b: _Builder, seen: observing.Observed, restarts: int, last_exit: int | None) -> None:
    """What Docker showed, into the status."""
    b.fields.update(
        container_id=seen.container_id,
        state=seen.state,
        health=seen.health,
        ip=seen.ip,
        started_at=seen.started_at,
        finished_at=seen.finished_at if not seen.running else None,
        restart_count=restarts,
        last_exit_code=last_exit,
        image_id=seen.image_id,
    )
