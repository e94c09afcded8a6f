"""What to do about one DockerCronJob, decided without I/O (batch/v1 CronJob's rules).

1. Its DockerJobs (runs) are sorted into active and finished; finished ones beyond the history limits go, oldest
   (by start) first.
2. A schedule the operator cannot follow (an impossible date, an unknown time zone) is reported as the Scheduled
   condition and a Warning Event, and waits for a spec change: never a crash loop.
3. Suspended: nothing starts.
4. Otherwise the newest schedule time since the last run (or since creation; no earlier than
   startingDeadlineSeconds ago) is due. Only that one starts, however many were missed (more than 100 missed is
   a Warning: a clock jump, or a deadline to set). Forbid skips it while a run is active (and it starts once
   that run ends, if still within the deadline); Replace deletes the active runs first.
5. The key is looked at again exactly when the next run is due (plus 100 ms, as the CronJob controller does):
   the operator never polls, so an idle cluster with many DockerCronJobs makes no API calls between runs.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from dockyard_operator.api.common import ConditionStatus, LocalObjectReference
from dockyard_operator.api.dockercronjob import (
    ConcurrencyPolicy,
    CronJobConditionType,
    DockerCronJobSpec,
    DockerCronJobStatus,
)
from dockyard_operator.cronjobs.errors import ScheduleError
from dockyard_operator.cronjobs.schedules import MISSED_LIMIT, Schedule
from dockyard_operator.runtime.conditions import Conditions
from dockyard_operator.runtime.plans import Event

NEXT_DELTA = 0.1
"""Seconds after a schedule time that the key is looked at (the CronJob controller's nextScheduleDelta)."""


def run_name(cronjob: str, scheduled: datetime.datetime) -> str:
    """`<cronjob>-<scheduled time in minutes since the epoch>`: the same run always has the same name."""
    return f"{cronjob}-{int(scheduled.timestamp()) // 60}"


@dataclass(frozen=True)
class Run:
    """One DockerJob the DockerCronJob owns."""

    name: str
    created: datetime.datetime
    scheduled: datetime.datetime | None = None
    start_time: datetime.datetime | None = None
    outcome: str | None = None
    """Complete or Failed once finished, else None."""

    completion_time: datetime.datetime | None = None
    deleting: bool = False


@dataclass(frozen=True)
class Facts:
    spec: DockerCronJobSpec
    status: DockerCronJobStatus
    generation: int | None
    name: str
    created: datetime.datetime
    runs: tuple[Run, ...]
    now: datetime.datetime
    schedule: Schedule | None
    schedule_error: ScheduleError | None = None


@dataclass(frozen=True)
class Plan:
    start: datetime.datetime | None
    """The schedule time to start a run for now (its name: run_name)."""

    delete: tuple[str, ...]
    """Runs to delete: beyond a history limit, or active ones that Replace replaces."""

    status: DockerCronJobStatus
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None


def decide(f: Facts) -> Plan:
    spec, previous, now = f.spec, f.status, f.now
    c = Conditions(previous.conditions, generation=f.generation, now=now)
    runs = sorted(f.runs, key=lambda r: r.name)
    active = [r for r in runs if r.outcome is None and not r.deleting]
    successes = [r.completion_time for r in runs if r.outcome == "Complete" and r.completion_time is not None]
    last_success = max([t for t in (previous.last_successful_time, *successes) if t is not None], default=None)
    status = previous.model_copy(
        update={
            "observed_generation": f.generation,
            "active": [LocalObjectReference(name=r.name) for r in active],
            "active_count": len(active),
            "last_successful_time": last_success,
        }
    )
    delete = _beyond_history(spec, runs)
    events: list[Event] = []

    if f.schedule is None:
        error = f.schedule_error or ScheduleError("the schedule cannot be read")
        before = c.get(CronJobConditionType.SCHEDULED)
        if before is None or before.status is not ConditionStatus.FALSE or before.message != str(error):
            events.append(Event(error.reason, str(error), warning=True))  # once per distinct problem
        c.set(CronJobConditionType.SCHEDULED, ConditionStatus.FALSE, error.reason, str(error))
        status = status.model_copy(update={"next_schedule_time": None, "conditions": c.result})
        return Plan(start=None, delete=delete, status=status, events=tuple(events))
    c.set(CronJobConditionType.SCHEDULED, ConditionStatus.TRUE, "ValidSchedule", "the schedule can be followed")

    if spec.suspend:
        status = status.model_copy(update={"next_schedule_time": None, "conditions": c.result})
        return Plan(start=None, delete=delete, status=status, events=tuple(events))

    schedule = f.schedule
    earliest = previous.last_schedule_time or f.created
    if spec.starting_deadline_seconds is not None:
        earliest = max(earliest, now - datetime.timedelta(seconds=spec.starting_deadline_seconds))
    try:
        due, missed = schedule.due(earliest, now)
        following = schedule.next_after(now)
    except ScheduleError as exc:  # a schedule that stops having times (a date that passed for good)
        return decide(_unreadable(f, exc))
    if missed > MISSED_LIMIT:
        events.append(Event(
            "TooManyMissedTimes",
            "too many missed start times; set or decrease .spec.startingDeadlineSeconds or check clock skew",
            warning=True,
        ))  # fmt: skip
    requeue = max(0.0, (following - now).total_seconds()) + NEXT_DELTA
    status = status.model_copy(update={"next_schedule_time": following, "conditions": c.result})
    if due is None:
        return Plan(start=None, delete=delete, status=status, events=tuple(events), requeue_after=requeue)
    if any(r.scheduled == due or r.name == run_name(f.name, due) for r in runs):
        status = status.model_copy(update={"last_schedule_time": due})  # started already (before a restart)
        return Plan(start=None, delete=delete, status=status, events=tuple(events), requeue_after=requeue)
    if active and spec.concurrency_policy is ConcurrencyPolicy.FORBID:
        events.append(Event(
            "JobAlreadyActive",
            "not starting a run because the previous one is still active and concurrencyPolicy is Forbid",
        ))  # fmt: skip
        return Plan(start=None, delete=delete, status=status, events=tuple(events), requeue_after=requeue)
    if active and spec.concurrency_policy is ConcurrencyPolicy.REPLACE:
        delete = (*delete, *(r.name for r in active))
    status = status.model_copy(update={"last_schedule_time": due})
    return Plan(start=due, delete=delete, status=status, events=tuple(events), requeue_after=requeue)


def _unreadable(f: Facts, error: ScheduleError) -> Facts:
    return Facts(
        spec=f.spec,
        status=f.status,
        generation=f.generation,
        name=f.name,
        created=f.created,
        runs=f.runs,
        now=f.now,
        schedule=None,
        schedule_error=error,
    )


def _beyond_history(spec: DockerCronJobSpec, runs: list[Run]) -> tuple[str, ...]:
    """Finished runs beyond the history limits, oldest first (by start time; never started ones count oldest)."""
    doomed: list[str] = []
    for outcome, keep in (("Complete", spec.successful_jobs_history_limit), ("Failed", spec.failed_jobs_history_limit)):
        finished = [r for r in runs if r.outcome == outcome and not r.deleting]
        finished.sort(key=lambda r: (r.start_time is not None, r.start_time or r.created, r.name))
        doomed += [r.name for r in finished[: max(0, len(finished) - keep)]]
    return tuple(doomed)
