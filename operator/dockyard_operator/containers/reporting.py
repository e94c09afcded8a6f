"""What a DockerContainer's status says before its host can be worked with (pure, like decisions.py).

Placement failed, the host has no verdict yet, the host is unreachable, or the container is waiting to leave its
previous host: in each case nothing is done on Docker, and the status says why, with the phase always set and the
same words a Kubernetes user reads on a Pod.
"""

from __future__ import annotations

import datetime

from dockyard_operator.api.common import ConditionStatus
from dockyard_operator.api.dockercontainer import ContainerPhase, ContainerReason, DockerContainerStatus, EventReason
from dockyard_operator.containers.backoffs import Memory
from dockyard_operator.containers.decisions import Plan
from dockyard_operator.containers.scheduling import Decision, Departure
from dockyard_operator.runtime.conditions import Conditions
from dockyard_operator.runtime.plans import Event

_CONTAINER_FIELDS = ("container_id", "state", "health", "ip", "started_at", "finished_at", "drift")


def _plan(
    status: DockerContainerStatus,
    conditions: Conditions,
    *,
    generation: int | None,
    phase: ContainerPhase,
    reason: ContainerReason,
    memory: Memory,
    events: tuple[Event, ...] = (),
    clear_container: bool = False,
    **fields: object,
) -> Plan:
    update: dict[str, object] = {
        **fields,
        "phase": phase,
        "reason": reason,
        "observed_generation": generation,
        "conditions": conditions.result,
    }
    if clear_container:
        update.update(dict.fromkeys(_CONTAINER_FIELDS))
    return Plan((), status.model_copy(update=update), events, memory)


def unschedulable(
    status: DockerContainerStatus,
    decision: Decision,
    *,
    generation: int | None,
    now: datetime.datetime,
    memory: Memory,
) -> Plan:
    """No host takes the container: Pending/Unschedulable, one FailedScheduling Warning per distinct message."""
    c = Conditions(status.conditions, generation=generation, now=now)
    previous = c.get("Scheduled")
    events: tuple[Event, ...] = ()
    if previous is None or previous.status is not ConditionStatus.FALSE or previous.message != decision.message:
        events = (Event(EventReason.FAILED_SCHEDULING.value, decision.message, warning=True),)
    c.set("Scheduled", ConditionStatus.FALSE, decision.reason, decision.message)
    c.set("Ready", ConditionStatus.FALSE, ContainerReason.UNSCHEDULABLE.value, decision.message)
    c.remove("HostReachable")
    c.remove("Healthy")
    return _plan(
        status,
        c,
        generation=generation,
        phase=ContainerPhase.PENDING,
        reason=ContainerReason.UNSCHEDULABLE,
        memory=memory,
        events=events,
        clear_container=True,
        host=None,
    )


def waiting_to_leave(
    status: DockerContainerStatus,
    departure: Departure,
    *,
    generation: int | None,
    now: datetime.datetime,
    memory: Memory,
) -> Plan:
    """The container must leave an unreachable host first: say so, touch nothing."""
    c = Conditions(status.conditions, generation=generation, now=now)
    c.set("Scheduled", ConditionStatus.FALSE, "PreviousHostUnreachable", departure.message)
    return _plan(
        status,
        c,
        generation=generation,
        phase=ContainerPhase(status.phase or ContainerPhase.UNKNOWN),
        reason=status.reason or ContainerReason.HOST_UNREACHABLE,
        memory=memory,
    )


def left(
    status: DockerContainerStatus,
    departure: Departure,
    *,
    generation: int | None,
    now: datetime.datetime,
    memory: Memory,
) -> Plan:
    """The container left its previous host (removed there, or released): forget what we knew of it there."""
    c = Conditions(status.conditions, generation=generation, now=now)
    for type_ in ("HostReachable", "Healthy", "Drifted"):
        c.remove(type_)
    warning = departure.how.value == "Release"
    events = (Event(EventReason.MOVED.value, departure.message, warning=warning),)
    return _plan(
        status,
        c,
        generation=generation,
        phase=ContainerPhase.PENDING,
        reason=ContainerReason.PENDING,
        memory=Memory(),
        events=events,
        clear_container=True,
        host=None,
    )


def scheduled(
    status: DockerContainerStatus,
    decision: Decision,
    *,
    generation: int | None,
    now: datetime.datetime,
    memory: Memory,
) -> Plan:
    """Placed on `decision.host` (status.host is the claim other replicas and a restarted operator respect)."""
    assert decision.host is not None
    c = Conditions(status.conditions, generation=generation, now=now)
    events: tuple[Event, ...] = ()
    if status.host != decision.host:
        events = (Event(EventReason.SCHEDULED.value, decision.message),)
    c.set("Scheduled", ConditionStatus.TRUE, decision.reason, decision.message)
    moved = status.host != decision.host
    phase = ContainerPhase.PENDING if moved else ContainerPhase(status.phase or ContainerPhase.PENDING)
    reason = ContainerReason.PENDING if moved else (status.reason or ContainerReason.PENDING)
    return _plan(
        status,
        c,
        generation=generation,
        phase=phase,
        reason=reason,
        memory=memory,
        events=events,
        host=decision.host,
    )


def unreachable(
    status: DockerContainerStatus,
    host: str,
    message: str,
    *,
    generation: int | None,
    now: datetime.datetime,
    memory: Memory,
) -> Plan:
    """The host cannot be reached: we know nothing about the container now. Say so, and touch nothing."""
    c = Conditions(status.conditions, generation=generation, now=now)
    events: tuple[Event, ...] = ()
    text = f"host {host}: {message}"
    if c.status("HostReachable") is not ConditionStatus.FALSE:
        events = (Event(EventReason.HOST_UNREACHABLE.value, text, warning=True),)
    c.set("HostReachable", ConditionStatus.FALSE, "HostUnreachable", text)
    c.set("Ready", ConditionStatus.UNKNOWN, "HostUnreachable", "the container's host cannot be reached")
    if status.container_id:
        c.set("Healthy", ConditionStatus.UNKNOWN, "HostUnreachable", "the container's host cannot be reached")
    return _plan(
        status,
        c,
        generation=generation,
        phase=ContainerPhase.UNKNOWN if status.container_id else ContainerPhase.PENDING,
        reason=ContainerReason.HOST_UNREACHABLE,
        memory=memory,
        events=events,
    )


def reachable(
    status: DockerContainerStatus, host: str, *, generation: int | None, now: datetime.datetime
) -> Conditions:
    """The conditions with HostReachable=True, for the decision to build on."""
    c = Conditions(status.conditions, generation=generation, now=now)
    c.set("HostReachable", ConditionStatus.TRUE, "Connected", f"host {host} is reachable")
    return c


def invalid(
    status: DockerContainerStatus, message: str, *, generation: int | None, now: datetime.datetime, memory: Memory
) -> Plan:
    """The object cannot be read by this operator (its CRD is newer than the operator, or it was hand-edited)."""
    c = Conditions(status.conditions, generation=generation, now=now)
    c.set("Ready", ConditionStatus.FALSE, ContainerReason.INVALID_SPEC.value, message)
    return _plan(
        status,
        c,
        generation=generation,
        phase=ContainerPhase.FAILED,
        reason=ContainerReason.INVALID_SPEC,
        memory=memory,
    )


def call_failed(
    status: DockerContainerStatus,
    message: str,
    *,
    unavailable: bool,
    generation: int | None,
    now: datetime.datetime,
    memory: Memory,
) -> Plan:
    """A Docker call failed mid-reconcile; it is retried with backoff. Unreachable (the host is flaky or the call
    timed out): Ready is unknown. Refused (an error we did not expect): not Ready. The rest of the status stands."""
    c = Conditions(status.conditions, generation=generation, now=now)
    if unavailable:
        c.set("Ready", ConditionStatus.UNKNOWN, "DockerUnavailable", message)
    else:
        c.set("Ready", ConditionStatus.FALSE, "DockerError", message)
    return _plan(
        status,
        c,
        generation=generation,
        phase=ContainerPhase(status.phase or ContainerPhase.UNKNOWN),
        reason=status.reason or ContainerReason.PENDING,
        memory=memory,
    )
