"""The DockerContainer decision as a table: (spec, what Docker shows, memory) -> (actions, phase, STATUS word).

No I/O, no clock: each row runs in microseconds and documents one rule (the kubelet's computePodActions tests
have the same shape).
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass, field
from typing import Any

import pytest
from docker_model import inspect_of

from dockyard_operator.api.dockercontainer import DockerContainerSpec, DockerContainerStatus
from dockyard_operator.api.dockerhost import DockerHostSpec
from dockyard_operator.containers import actions, decisions, desired
from dockyard_operator.containers.backoffs import BackOff, Failure, FailureKind, Memory
from dockyard_operator.containers.errors import MissingReferenceError

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
WANT_HASH = "filled in by _situation"
T = 1000.0  # the monotonic clock
CID = "c" * 64


@dataclass(frozen=True)
class Case:
    name: str
    spec: dict[str, Any] = field(default_factory=dict)
    state: str | None = None  # Docker's state of the existing container; None: no container
    exit_code: int = 0
    health: str | None = None
    error: str = ""  # Docker's State.Error (a start that failed)
    memory: Memory = field(default_factory=Memory)
    failure: Failure | None = None
    status: dict[str, Any] = field(default_factory=dict)
    drifted: bool = False
    # expected
    actions: tuple[type, ...] = ()
    phase: str = "Running"
    reason: str = "Running"
    requeue: float | None = None


def _back_off(kind: FailureKind, count: int, not_before: float) -> Memory:
    back_off = BackOff(count=count, not_before=not_before, updated=not_before - 10)
    return Memory(failing=(kind, back_off, "boom", WANT_HASH))


CASES = [
    Case("nothing yet: pull as the policy says, then create", actions=(actions.EnsureImage, actions.CreateContainer),
         phase="Creating", reason="ContainerCreating"),
    Case("running and healthy", state="running", health="healthy"),
    Case("running, health check failing, no restartOnUnhealthy", state="running", health="unhealthy"),
    Case("unhealthy with restartOnUnhealthy: restart at once", state="running", health="unhealthy",
         spec={"healthCheck": {"shell": {"command": "false"}, "restartOnUnhealthy": True}},
         actions=(actions.RestartContainer,), requeue=10.0),
    Case("unhealthy again inside the back-off: wait", state="running", health="unhealthy",
         spec={"healthCheck": {"shell": {"command": "false"}, "restartOnUnhealthy": True}},
         memory=Memory(unhealthy=BackOff(count=1, not_before=T + 7, updated=T - 3)), requeue=7.0),
    Case("exited, Always: start at once", state="exited", exit_code=1, actions=(actions.StartContainer,)),
    Case("exited again inside the crash back-off: CrashLoopBackOff", state="exited", exit_code=1,
         memory=Memory(crash=BackOff(count=1, not_before=T + 4, updated=T - 6)), reason="CrashLoopBackOff",
         requeue=4.0),
    Case("a crash back-off untouched for 10 minutes is forgotten", state="exited", exit_code=1,
         memory=Memory(crash=BackOff(count=5, not_before=T + 1, updated=T - 700)), actions=(actions.StartContainer,)),
    Case("exited 0, OnFailure: done", state="exited", spec={"restartPolicy": "OnFailure"}, phase="Succeeded",
         reason="Completed"),
    Case("exited 2, OnFailure: start", state="exited", exit_code=2, spec={"restartPolicy": "OnFailure"},
         actions=(actions.StartContainer,)),
    Case("exited 2, Never: Error", state="exited", exit_code=2, spec={"restartPolicy": "Never"}, phase="Failed",
         reason="Error"),
    Case("Docker restarting it: CrashLoopBackOff", state="restarting", exit_code=1, reason="CrashLoopBackOff"),
    Case("paused", state="paused", reason="Paused"),
    Case("created, never started (a crash between create and start): made again, its files may be missing",
         state="created", actions=(actions.RemoveContainer,), phase="Creating", reason="ContainerCreating"),
    Case("created, its start failed before (no back-off remembered): start again", state="created",
         error="exec failed", actions=(actions.StartContainer,), phase="Creating", reason="ContainerCreating"),
    Case("exited, but starting it again keeps failing: CrashLoopBackOff, no start", state="exited", exit_code=1,
         memory=_back_off(FailureKind.START, 1, T + 9), reason="CrashLoopBackOff", requeue=9.0),
    Case("a start just failed: RunContainerError, look again in a second", state="created",
         failure=Failure(FailureKind.START, "no such file"), phase="Pending", reason="RunContainerError",
         requeue=1.0),
    Case("inside the start back-off: CrashLoopBackOff", state="created",
         memory=_back_off(FailureKind.START, 2, T + 15), phase="Pending", reason="CrashLoopBackOff", requeue=15.0),
    Case("a pull just failed: ErrImagePull", failure=Failure(FailureKind.PULL, "not found"), phase="Pending",
         reason="ErrImagePull", requeue=1.0),
    Case("inside the pull back-off: ImagePullBackOff", memory=_back_off(FailureKind.PULL, 3, T + 30),
         phase="Pending", reason="ImagePullBackOff", requeue=30.0),
    Case("the pull back-off is over: try again", memory=_back_off(FailureKind.PULL, 3, T - 1),
         actions=(actions.EnsureImage, actions.CreateContainer), phase="Creating", reason="ContainerCreating"),
    Case("image absent with pull policy Never", failure=Failure(FailureKind.NEVER_PULL, "absent"), phase="Pending",
         reason="ErrImageNeverPull", requeue=1.0),
    Case("the name belongs to someone else", failure=Failure(FailureKind.NAME_CONFLICT, "taken"), phase="Failed",
         reason="NameConflict", requeue=1.0),
    Case("drift with Enforce: the new image first, then remove (then create)", state="running", drifted=True,
         status={"phase": "Running", "reason": "Running"}, actions=(actions.EnsureImage, actions.RemoveContainer)),
    Case("drift with Report: say so, touch nothing", state="running", drifted=True,
         spec={"driftPolicy": "Report"}),
    Case("drift with Enforce while the new image cannot be pulled: the old one keeps serving", state="running",
         drifted=True, memory=_back_off(FailureKind.PULL, 1, T + 8), reason="ImagePullBackOff", requeue=8.0),
    # Terminal phases are final, as a Pod's: a finished attempt must never run again on its own.
    Case("Never, Failed, its container pruned from the host: stays Failed, nothing created",
         spec={"restartPolicy": "Never"}, status={"phase": "Failed", "reason": "Error", "observedGeneration": 1,
                                                  "containerID": CID, "lastExitCode": 2},
         phase="Failed", reason="Error"),
    Case("Never, Succeeded, container gone: stays Succeeded", spec={"restartPolicy": "Never"},
         status={"phase": "Succeeded", "reason": "Completed", "observedGeneration": 1, "containerID": CID},
         phase="Succeeded", reason="Completed"),
    Case("OnFailure, Succeeded, container gone: stays Succeeded", spec={"restartPolicy": "OnFailure"},
         status={"phase": "Succeeded", "reason": "Completed", "observedGeneration": 1},
         phase="Succeeded", reason="Completed"),
    Case("Never, Failed, drift (a Secret changed): nothing recreated", state="exited", exit_code=2, drifted=True,
         spec={"restartPolicy": "Never"}, status={"phase": "Failed", "reason": "Error", "observedGeneration": 1},
         phase="Failed", reason="Error"),
    Case("Never, Failed at an older generation: the new spec runs", spec={"restartPolicy": "Never"},
         status={"phase": "Failed", "reason": "Error", "observedGeneration": 0},
         actions=(actions.EnsureImage, actions.CreateContainer), phase="Creating", reason="ContainerCreating"),
    Case("Always, Failed (HostPathNotAllowed before): not terminal, it is created now",
         status={"phase": "Failed", "reason": "HostPathNotAllowed", "observedGeneration": 1},
         actions=(actions.EnsureImage, actions.CreateContainer), phase="Creating", reason="ContainerCreating"),
]  # fmt: skip


def _situation(case: Case) -> decisions.Situation:
    spec = DockerContainerSpec.model_validate({"image": "busybox:1", "hostRef": {"name": "h"}, **case.spec})
    want = desired.build_desired(namespace="ns", name="c", uid="u1", spec=spec, refs=desired.ResolvedRefs())
    if case.memory.failing is not None:  # the failure was remembered for this very spec
        kind, back_off, message, _ = case.memory.failing
        case = dataclasses.replace(case, memory=case.memory.with_(failing=(kind, back_off, message, want.spec_hash)))
    found: tuple[decisions.Found, ...] = ()
    inspect = None
    if case.state is not None:
        built = want
        if case.drifted:
            other = DockerContainerSpec.model_validate({**spec.model_dump(by_alias=True, exclude_none=True),
                                                        "image": "busybox:0"})  # fmt: skip
            built = desired.build_desired(namespace="ns", name="c", uid="u1", spec=other, refs=desired.ResolvedRefs())
        inspect = inspect_of(built, state="running" if case.state == "paused" else case.state)
        inspect["Id"] = CID
        state = inspect["State"]
        state["Status"] = case.state
        state["Running"] = case.state in ("running", "paused")
        state["ExitCode"] = case.exit_code
        state["Error"] = case.error
        if case.health:
            state["Health"] = {"Status": case.health}
        found = (decisions.Found(CID, 1, built.spec_hash, case.state == "running"),)
    return decisions.Situation(
        namespace="ns",
        name="c",
        uid="u1",
        generation=1,
        spec=spec,
        status=DockerContainerStatus.model_validate({"host": "h", **case.status}),
        host="h",
        host_spec=DockerHostSpec(),
        desired=want,
        desired_error=None,
        found=found,
        inspect=inspect,
        memory=case.memory,
        now=NOW,
        monotonic=T,
        failure=case.failure,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision_table(case: Case) -> None:
    plan = decisions.decide(_situation(case))
    assert tuple(type(a) for a in plan.actions) == case.actions
    assert plan.status.phase is not None
    assert plan.status.phase.value == case.phase
    assert plan.status.reason is not None
    assert plan.status.reason.value == case.reason
    assert plan.requeue_after == (pytest.approx(case.requeue) if case.requeue is not None else None)


def test_every_decision_sets_phase_and_reason() -> None:
    for case in CASES:
        status = decisions.decide(_situation(case)).status
        assert status.phase is not None, case.name
        assert status.reason is not None, case.name


def test_a_missing_reference_is_create_container_config_error_and_one_event() -> None:
    situation = _situation(Case("missing"))
    missing = MissingReferenceError(kind="Secret", object_name="creds", key=None, field="env[0]")
    plan = decisions.decide(dataclasses.replace(situation, desired=None, desired_error=missing))
    assert (plan.status.phase.value, plan.status.reason.value) == ("Pending", "CreateContainerConfigError")  # type: ignore[union-attr]
    assert [e.reason for e in plan.events] == ["Failed"]
    again = decisions.decide(dataclasses.replace(situation, desired=None, desired_error=missing, status=plan.status))
    assert again.events == (), "the same failure is not announced twice"


@pytest.mark.parametrize(
    ("failures", "delays"),
    [(1, [10]), (3, [10, 20, 40]), (8, [10, 20, 40, 80, 160, 300, 300, 300])],
)
def test_the_back_off_doubles_from_10s_to_5min(failures: int, delays: list[float]) -> None:
    from dockyard_operator.containers.backoffs import next_back_off

    seen, back_off, now = [], None, T
    for _ in range(failures):
        back_off = next_back_off(back_off, now=now, initial=10, cap=300)
        seen.append(back_off.not_before - now)
        now = back_off.not_before
    assert seen == delays


def test_duplicates_are_removed_before_anything_else() -> None:
    situation = _situation(Case("dup", state="running"))
    extra = decisions.Found("d" * 64, 0, "other", True)
    plan = decisions.decide(dataclasses.replace(situation, found=(*situation.found, extra)))
    assert plan.actions == (actions.RemoveContainer("h", "d" * 64, True, 10, "a duplicate of this object's container"),)


def test_host_paths_the_host_does_not_allow_are_refused() -> None:
    situation = _situation(
        Case("bind", spec={"volumes": [{"name": "v", "mountPath": "/v", "hostPath": {"path": "/"}}]})
    )
    plan = decisions.decide(situation)
    assert (plan.actions, plan.status.reason.value) == ((), "HostPathNotAllowed")  # type: ignore[union-attr]


def test_a_changed_spec_is_tried_at_once_not_after_the_old_specs_back_off() -> None:
    """The user fixed the image tag: the pull back-off of the typo does not apply to it (the kubelet keys its
    pull back-off by image too)."""
    situation = _situation(Case("pulling", memory=_back_off(FailureKind.PULL, 5, T + 300)))
    assert decisions.decide(situation).status.reason.value == "ImagePullBackOff"  # type: ignore[union-attr]
    kind, back_off, message, _ = situation.memory.failing  # type: ignore[misc]
    fixed = dataclasses.replace(situation, memory=Memory(failing=(kind, back_off, message, "the typo's hash")))
    plan = decisions.decide(fixed)
    assert tuple(type(a) for a in plan.actions) == (actions.EnsureImage, actions.CreateContainer)
    assert plan.memory.failing is None


def test_a_drifted_container_is_kept_as_the_previous_one_not_a_duplicate() -> None:
    """Recreate after drift keeps the old container (stopped) for `logs --previous`; duplicates are removed."""
    plan = decisions.decide(_situation(Case("drift", state="running", drifted=True)))
    removal = next(a for a in plan.actions if isinstance(a, actions.RemoveContainer))
    assert removal.keep_as_previous
    situation = _situation(Case("dup", state="running"))
    extra = decisions.Found("d" * 64, 0, "other", True)
    plan = decisions.decide(dataclasses.replace(situation, found=(*situation.found, extra)))
    assert not next(a for a in plan.actions if isinstance(a, actions.RemoveContainer)).keep_as_previous


def test_previous_container_names_never_match_a_current_one() -> None:
    from dockyard_operator.containers import desired

    current = desired.container_name(namespace="ns", name="web.previous")
    assert not desired.is_previous([f"/{current}"])
    assert desired.is_previous(["/" + desired.previous_container_name(current)])
    assert not desired.is_previous(["/ns_web_previous-not"])
