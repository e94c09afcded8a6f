"""What a DockerHost's status says, and when its deletion may finish (pure).

Status: the connection's verdict and facts (Docker and agent versions, OS, heartbeat), the number of
DockerContainers placed on it, one Ready condition. A heartbeat alone never justifies a write: idle hosts cost the
API server nothing.

Deletion means: the host is drained first. Its DockerContainers see it is being deleted and leave it — removing
their Docker containers while it is reachable, releasing at once with a Warning when it is not (their own
reconcilers do this, scheduling.departure). The host waits until none is placed on it, at most `timeout`, then
releases its finalizer (with a Warning naming what may remain); `dockyard.dev/orphan: "true"` on the host skips
the drain and leaves the containers running, unmanaged.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from dockyard_operator.api import common
from dockyard_operator.api.common import ConditionStatus
from dockyard_operator.api.dockerhost import DockerHostStatus, HostPhase
from dockyard_operator.hosts.states import HostState
from dockyard_operator.runtime.conditions import Conditions
from dockyard_operator.runtime.plans import Event

FINALIZER = "dockyard.dev/host-cleanup"
ORPHAN_ANNOTATION = "dockyard.dev/orphan"
#: While draining, look again at least this often (each container leaving wakes us sooner).
DRAIN_RECHECK = 10.0


def status_for(
    current: DockerHostStatus,
    *,
    state: HostState,
    tunnel: bool,
    containers: int,
    token_ref: common.SecretReference | None,
    generation: int | None,
    now: datetime.datetime,
) -> DockerHostStatus | None:
    """The status to write, or None when nothing but the heartbeat changed (or no verdict exists yet)."""
    if not state.decided:
        return None
    if state.reachable:
        ready = (ConditionStatus.TRUE, "Connected", f"Docker {state.docker_version} reachable")
    else:
        ready = (ConditionStatus.FALSE, "AgentNotConnected" if tunnel else "Unreachable", state.message)
    c = Conditions(current.conditions, generation=generation, now=now)
    c.set("Ready", *ready)
    return current.model_copy(
        update={
            "phase": HostPhase.CONNECTED if state.reachable else HostPhase.DISCONNECTED,
            "observed_generation": generation,
            "containers": containers,
            "conditions": c.result,
            "agent_version": state.agent_version or current.agent_version,
            "docker_version": state.docker_version or current.docker_version,
            "operating_system": state.os or current.operating_system,
            "architecture": state.arch or current.architecture,
            "last_heartbeat": state.last_heartbeat or current.last_heartbeat,
            "connected_since": state.connected_since,
            "token_secret_ref": token_ref,
        }
    )


def heartbeat_only(before: DockerHostStatus, after: DockerHostStatus) -> bool:
    return before.model_copy(update={"last_heartbeat": None}) == after.model_copy(update={"last_heartbeat": None})


def failed(
    current: DockerHostStatus, reason: str, message: str, *, generation: int | None, now: datetime.datetime
) -> DockerHostStatus:
    """A host the operator cannot even try to reach (invalid spec, missing TLS Secret, no tunnel)."""
    c = Conditions(current.conditions, generation=generation, now=now)
    c.set("Ready", ConditionStatus.FALSE, reason, message)
    return current.model_copy(
        update={"phase": HostPhase.DISCONNECTED, "observed_generation": generation, "conditions": c.result}
    )


@dataclass(frozen=True)
class Drain:
    release: bool
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    message: str = ""


def decide_drain(*, placed: Sequence[str], orphan: bool, waited: float, timeout: float) -> Drain:
    """Whether a deleted host may go: once no DockerContainer is placed on it (or orphaning, or the timeout)."""
    if orphan:
        note = f"left {len(placed)} container(s) running on the host (dockyard.dev/orphan)" if placed else ""
        return Drain(True, (Event("Orphaned", note),) if note else ())
    if not placed:
        return Drain(True, (Event("Drained", "no DockerContainer is placed on the host any more"),))
    names = ", ".join(sorted(placed)[:10]) + (" …" if len(placed) > 10 else "")
    if waited < timeout:
        return Drain(False, requeue_after=min(DRAIN_RECHECK, timeout - waited), message=f"waiting for {names} to leave")
    note = f"drain timed out after {waited:.0f}s; containers of {names} may remain on the host"
    return Drain(True, (Event("DrainTimeout", note, warning=True),))
