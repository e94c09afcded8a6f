"""What to do about one DockerJob, decided without I/O: its attempts in, a Plan out (batch/v1 Job's rules).

Attempts are DockerContainers the DockerJob owns; their phase is the DockerContainer's (Succeeded on exit 0,
Failed otherwise under restartPolicy Never; an OnFailure attempt restarts in place and stays Running). One pass:

1. a finished DockerJob only cleans up: leftover attempts are stopped, and after ttlSecondsAfterFinished it is
   deleted itself;
2. suspended: every active attempt is stopped (not counted as a failure), none is started; resuming restarts the
   clock of activeDeadlineSeconds;
3. it fails, in this order, when a failure matches a FailJob rule (reason FailurePolicy), when more attempts
   failed than backoffLimit tolerates (BackoffLimitExceeded; with OnFailure, when the restarts of the running
   attempts reach backoffLimit), or when activeDeadlineSeconds has passed since startTime (DeadlineExceeded);
   running attempts are then stopped and counted as failed;
4. it completes when `completions` attempts succeeded (CompletionsReached);
5. otherwise it keeps min(parallelism, completions - succeeded) attempts active: a new attempt after failures
   waits 10 s, doubled per failure since the last success, at most 6 min, counted from when the operator saw the
   newest failure (its own clock: a Docker host's may be off).

An attempt whose host cannot be reached is still active: no second attempt is started while the first may be
running, and its silence is not a failure (docs/operator.md, "DockerJob").
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from dockyard_operator.api.common import ConditionStatus
from dockyard_operator.api.dockercontainer import ContainerPhase, RestartPolicy
from dockyard_operator.api.dockerjob import (
    DockerJobSpec,
    DockerJobStatus,
    ExitCodeOperator,
    FailurePolicyAction,
    JobConditionType,
    JobPhase,
    JobReason,
)
from dockyard_operator.runtime.conditions import Conditions
from dockyard_operator.runtime.plans import Event

BACKOFF_BASE = 10.0
"""Seconds before the attempt after the first failure (the Job controller's DefaultJobPodFailureBackOff)."""

BACKOFF_CAP = 360.0
"""The longest wait before a new attempt. (Kubernetes raised its cap from 6 to 10 minutes in 1.27; Dockyard keeps
6, the value its issue fixed: a job that keeps failing is retried a little sooner.)"""

COMPLETED_MESSAGE = "Reached expected number of succeeded attempts"
BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"


def failure_backoff(failures: int) -> float:
    """Seconds to wait after the newest of `failures` failures since the last success: 10, 20, 40 ... 360."""
    if failures <= 0:
        return 0.0
    return min(BACKOFF_BASE * float(2 ** min(failures - 1, 32)), BACKOFF_CAP)


@dataclass(frozen=True)
class Attempt:
    """One DockerContainer the DockerJob owns, as the decision sees it."""

    name: str
    created: datetime.datetime
    phase: ContainerPhase | None = None
    ready: bool = False
    exit_code: int | None = None
    restarts: int = 0
    finished_at: datetime.datetime | None = None
    deleting: bool = False

    @property
    def succeeded(self) -> bool:
        return self.phase is ContainerPhase.SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.phase is ContainerPhase.FAILED

    @property
    def active(self) -> bool:
        return not self.deleting and not self.succeeded and not self.failed

    @property
    def ended(self) -> datetime.datetime:
        """When it finished (Docker's time), or when it was created if that is unknown."""
        return self.finished_at or self.created


@dataclass(frozen=True)
class Facts:
    spec: DockerJobSpec
    status: DockerJobStatus
    generation: int | None
    attempts: tuple[Attempt, ...]
    now: datetime.datetime


@dataclass(frozen=True)
class Plan:
    create: int
    """New attempts to start now."""

    delete: tuple[str, ...]
    """Attempts to stop and delete (their finalizer stops the container within its grace period)."""

    status: DockerJobStatus
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    delete_job: bool = False
    """ttlSecondsAfterFinished has passed: delete the DockerJob itself (foreground: its attempts go first)."""

    output_of: str | None = None
    """The failed attempt whose last lines of output go into the Failed condition's message."""


def rule_for(spec: DockerJobSpec, attempt: Attempt) -> tuple[int, FailurePolicyAction] | None:
    """The first failurePolicy rule a failed attempt's exit code matches, with its index."""
    if spec.failure_policy is None or attempt.exit_code is None or attempt.exit_code == 0:
        return None
    for index, rule in enumerate(spec.failure_policy.rules):
        inside = attempt.exit_code in rule.on_exit_codes.values
        if inside == (rule.on_exit_codes.operator is ExitCodeOperator.IN):
            return index, rule.action
    return None


def decide(f: Facts) -> Plan:
    spec, previous, now = f.spec, f.status, f.now
    c = Conditions(previous.conditions, generation=f.generation, now=now)
    attempts = sorted(f.attempts, key=lambda a: (a.created, a.name))
    active = [a for a in attempts if a.active]
    succeeded = max(previous.succeeded, sum(a.succeeded for a in attempts))
    failed_attempts = [a for a in attempts if a.failed]
    judged = [(a, rule_for(spec, a)) for a in failed_attempts]
    counted = [a for a, rule in judged if rule is None or rule[1] is not FailurePolicyAction.IGNORE]
    failed = max(previous.failed, len(counted))
    status = previous.model_copy(
        update={
            "observed_generation": f.generation,
            "active": len(active),
            "ready": sum(a.ready for a in active),
            "succeeded": succeeded,
            "failed": failed,
            "completions": f"{succeeded}/{spec.completions}",
        }
    )

    # 1. Finished: clean up, then the TTL.
    if c.status(JobConditionType.COMPLETE) is ConditionStatus.TRUE or (
        c.status(JobConditionType.FAILED) is ConditionStatus.TRUE
    ):
        return _finished(f, status, c, tuple(a.name for a in active))

    # 2. Suspension.
    events: list[Event] = []
    if spec.suspend:
        if c.status(JobConditionType.SUSPENDED) is not ConditionStatus.TRUE:
            c.set(JobConditionType.SUSPENDED, ConditionStatus.TRUE, JobReason.JOB_SUSPENDED, "Job suspended")
            events.append(Event("Suspended", "Job suspended"))
        status = status.model_copy(update={"phase": JobPhase.SUSPENDED, "start_time": None, "conditions": c.result})
        return Plan(create=0, delete=tuple(a.name for a in active), status=status, events=tuple(events))
    start = status.start_time
    if c.status(JobConditionType.SUSPENDED) is ConditionStatus.TRUE:
        c.set(JobConditionType.SUSPENDED, ConditionStatus.FALSE, JobReason.JOB_RESUMED, "Job resumed")
        events.append(Event("Resumed", "Job resumed"))
        start = now
    start = start or now

    # Failures since the last success feed the back-off (ignored ones too, as in Kubernetes). Order and time come
    # from the API server and the operator, never from a Docker host's clock, which may be off by an hour: the
    # attempts are ordered by creation, and a failure is stamped when the operator first sees it.
    last_success = max((a.created for a in attempts if a.succeeded), default=None)
    streak = [a for a in failed_attempts if last_success is None or a.created > last_success]
    newest = max(streak, key=lambda a: (a.created, a.name), default=None)
    last_failure, last_failed = previous.last_failure_time, previous.last_failed_attempt
    if newest is not None and newest.name != last_failed:
        last_failure, last_failed = now, newest.name
    status = status.model_copy(
        update={"start_time": start, "last_failure_time": last_failure, "last_failed_attempt": last_failed}
    )

    # 3. Failure.
    verdict = _failure(f, judged, failed, active, start)
    if verdict is not None:
        reason, message, culprit = verdict
        killed = tuple(a.name for a in active)
        c.set(JobConditionType.FAILED, ConditionStatus.TRUE, reason, message)
        newest_failed = culprit or max(failed_attempts, key=lambda a: (a.created, a.name), default=None)
        status = status.model_copy(
            update={
                "phase": JobPhase.FAILED,
                "failed": failed + len(killed),
                "active": 0,
                "ready": 0,
                "finish_time": now,
                "duration": _duration(now - start),
                "conditions": c.result,
            }
        )
        events.append(Event(str(reason), message, warning=True))
        return Plan(
            create=0,
            delete=killed,
            status=status,
            events=tuple(events),
            requeue_after=_look_again(_ttl_left(spec, now, now)),
            output_of=newest_failed.name if newest_failed is not None else None,
        )

    # 4. Completion.
    if succeeded >= spec.completions:
        c.set(JobConditionType.COMPLETE, ConditionStatus.TRUE, JobReason.COMPLETIONS_REACHED, COMPLETED_MESSAGE)
        status = status.model_copy(
            update={
                "phase": JobPhase.COMPLETE,
                "active": 0,
                "ready": 0,
                "completion_time": now,
                "finish_time": now,
                "duration": _duration(now - start),
                "conditions": c.result,
            }
        )
        events.append(Event("Completed", "Job completed"))
        return Plan(
            create=0,
            delete=tuple(a.name for a in active),
            status=status,
            events=tuple(events),
            requeue_after=_look_again(_ttl_left(spec, now, now)),
        )

    # 5. Keep the right number of attempts active.
    want = max(0, min(spec.completions - succeeded, spec.parallelism))
    requeue: list[float] = []
    create, delete = 0, tuple[str, ...]()
    if len(active) < want:
        wait = 0.0
        if streak and last_failure is not None:
            delay = failure_backoff(len(streak))
            wait = min(delay, delay - (now - last_failure).total_seconds())
        if wait > 0:
            requeue.append(max(wait, 1.0))
        else:
            create = want - len(active)
    elif len(active) > want:
        delete = tuple(a.name for a in _removal_order(active)[: len(active) - want])
    if spec.active_deadline_seconds is not None:
        requeue.append(max(0.5, spec.active_deadline_seconds - (now - start).total_seconds()))
    # Attempts created now count as active at once (as the Job controller counts them): the status does not have
    # to be written again when the informer shows them.
    status = status.model_copy(
        update={"phase": JobPhase.RUNNING, "active": len(active) + create - len(delete), "conditions": c.result}
    )
    return Plan(
        create=create,
        delete=delete,
        status=status,
        events=tuple(events),
        requeue_after=min(requeue) if requeue else None,
    )


def _failure(
    f: Facts,
    judged: Sequence[tuple[Attempt, tuple[int, FailurePolicyAction] | None]],
    failed: int,
    active: Sequence[Attempt],
    start: datetime.datetime,
) -> tuple[JobReason, str, Attempt | None] | None:
    """Why the DockerJob fails now, and the attempt whose output tells (None: the newest failed one)."""
    spec = f.spec
    for attempt, rule in sorted(judged, key=lambda pair: (pair[0].created, pair[0].name)):
        if rule is not None and rule[1] is FailurePolicyAction.FAIL_JOB:
            return (
                JobReason.FAILURE_POLICY,
                (
                    f"attempt {attempt.name} failed with exit code {attempt.exit_code} matching FailJob rule at index "
                    f"{rule[0]}"
                ),
                attempt,
            )
    if failed > spec.backoff_limit:
        return JobReason.BACKOFF_LIMIT_EXCEEDED, BACKOFF_MESSAGE, None
    if spec.template.spec.restart_policy is RestartPolicy.ON_FAILURE:
        restarts = sum(a.restarts for a in active)
        if (restarts > 0) if spec.backoff_limit == 0 else (restarts >= spec.backoff_limit):
            return JobReason.BACKOFF_LIMIT_EXCEEDED, BACKOFF_MESSAGE, None
    deadline = spec.active_deadline_seconds
    if deadline is not None and (f.now - start).total_seconds() >= deadline:
        return JobReason.DEADLINE_EXCEEDED, DEADLINE_MESSAGE, None
    return None


def _finished(f: Facts, status: DockerJobStatus, c: Conditions, leftovers: tuple[str, ...]) -> Plan:
    finished = status.finish_time or _transition_time(c) or f.now
    status = status.model_copy(update={"active": 0, "ready": 0, "finish_time": finished})
    left = _ttl_left(f.spec, finished, f.now)
    if left is not None and left <= 0:
        return Plan(create=0, delete=leftovers, status=status, delete_job=True)
    return Plan(create=0, delete=leftovers, status=status, requeue_after=_look_again(left))


def _look_again(seconds: float | None) -> float | None:
    # A requeue of 0 would read as "done"; the TTL's last moment is looked at half a second later at the earliest.
    return None if seconds is None else max(seconds, 0.5)


def _transition_time(c: Conditions) -> datetime.datetime | None:
    for type_ in (JobConditionType.COMPLETE, JobConditionType.FAILED):
        condition = c.get(type_)
        if condition is not None and condition.status is ConditionStatus.TRUE:
            return condition.last_transition_time
    return None


def _ttl_left(spec: DockerJobSpec, finished: datetime.datetime, now: datetime.datetime) -> float | None:
    if spec.ttl_seconds_after_finished is None:
        return None
    return spec.ttl_seconds_after_finished - (now - finished).total_seconds()


def _removal_order(active: Sequence[Attempt]) -> list[Attempt]:
    """Excess attempts go cheapest first, as the Job controller picks: not ready, not yet running, newest."""
    return sorted(
        active,
        key=lambda a: (a.ready, a.phase is ContainerPhase.RUNNING, -a.created.timestamp(), a.name),
    )


def _duration(delta: datetime.timedelta) -> str:
    """kubectl's short duration: 45s, 2m5s, 3h4m, 2d3h."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    return f"{secs}s"
