"""DockerCronJob schedules and decisions on a fake clock: batch/v1 CronJob's rules, case by case."""

from __future__ import annotations

import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dockyard_operator.api.dockercronjob import DockerCronJobSpec, DockerCronJobStatus
from dockyard_operator.cronjobs import schedules
from dockyard_operator.cronjobs.decisions import Facts, Plan, Run, decide, run_name
from dockyard_operator.cronjobs.errors import ScheduleError, UnknownTimeZoneError

UTC = datetime.UTC
T0 = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def spec(schedule: str = "*/5 * * * *", **fields: Any) -> DockerCronJobSpec:
    template = {"spec": {"template": {"spec": {"image": "busybox", "hostRef": {"name": "edge-1"}}}}}
    return DockerCronJobSpec.model_validate({"schedule": schedule, "jobTemplate": template, **fields})


def decide_at(
    job: DockerCronJobSpec,
    now: datetime.datetime,
    *,
    runs: list[Run] | None = None,
    status: DockerCronJobStatus | None = None,
    created: datetime.datetime = T0,
) -> Plan:
    try:
        schedule: schedules.Schedule | None = schedules.parse(job.schedule, job.time_zone)
        problem = None
    except ScheduleError as exc:
        schedule, problem = None, exc
    return decide(Facts(spec=job, status=status or DockerCronJobStatus(), generation=1, name="backup",
                        created=created, runs=tuple(runs or ()), now=now, schedule=schedule,
                        schedule_error=problem))  # fmt: skip


def active(name: str, scheduled: datetime.datetime) -> Run:
    return Run(name=name, created=scheduled, scheduled=scheduled, start_time=scheduled)


def finished(name: str, start: float, outcome: str) -> Run:
    return Run(name=name, created=at(start), scheduled=at(start), start_time=at(start), outcome=outcome,
               completion_time=at(start + 10))  # fmt: skip


# -- schedules ----------------------------------------------------------------------------------------------------


def ny(year: int, month: int, day: int, hour: int, minute: int) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("America/New_York"))


def times(schedule: schedules.Schedule, start: datetime.datetime, n: int) -> list[datetime.datetime]:
    out, at_ = [], start
    for _ in range(n):
        at_ = schedule.next_after(at_)
        out.append(at_.astimezone(schedule.zone))
    return out


def test_a_time_the_spring_forward_skips_does_not_run_that_day() -> None:
    daily = schedules.parse("30 2 * * *", "America/New_York")
    got = times(daily, ny(2026, 3, 7, 12, 0), 2)
    assert got == [ny(2026, 3, 9, 2, 30), ny(2026, 3, 10, 2, 30)], "2:30 does not exist on 8 March 2026"


def test_a_time_the_fall_back_repeats_runs_twice_as_in_kubernetes() -> None:
    daily = schedules.parse("30 1 * * *", "America/New_York")
    got = [t.astimezone(UTC) for t in times(daily, ny(2026, 10, 31, 12, 0), 3)]
    assert got == [
        datetime.datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT
        datetime.datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # 01:30 EST, an hour later
        datetime.datetime(2026, 11, 2, 6, 30, tzinfo=UTC),
    ]


def test_hourly_across_spring_forward_skips_the_hour_that_does_not_exist() -> None:
    hourly = schedules.parse("@hourly", "America/New_York")
    got = [(t.hour, t.minute) for t in times(hourly, ny(2026, 3, 8, 0, 30), 3)]
    assert got == [(1, 0), (3, 0), (4, 0)]


def test_day_of_month_and_day_of_week_both_set_mean_either() -> None:
    friday_13 = schedules.parse("0 0 13 * 5")
    got = times(friday_13, datetime.datetime(2026, 11, 1, tzinfo=UTC), 3)
    assert [t.day for t in got] == [6, 13, 20], "the 13th, and every Friday"


@pytest.mark.parametrize(
    ("schedule", "zone", "error"),
    [
        ("0 0 31 2 *", None, ScheduleError),
        ("61 * * * *", None, ScheduleError),
        ("0 0 * * 7", None, ScheduleError),
        ("0 0 L * *", None, ScheduleError),
        ("0 22-2 * * *", None, ScheduleError),
        ("0 0 * DEC-JAN *", None, ScheduleError),
        ("0 0 * * FRI-MON", None, ScheduleError),
        ("* * * * *", "Mars/Olympus_Mons", UnknownTimeZoneError),
    ],
)
def test_schedules_the_operator_cannot_follow_say_why(schedule: str, zone: str | None, error: type[Exception]) -> None:
    with pytest.raises(error):
        schedules.parse(schedule, zone)


def test_forward_ranges_by_number_and_name_are_read() -> None:
    weekdays = schedules.parse("0 9 * * MON-FRI")
    assert weekdays.next_after(at(0)).weekday() in range(5)
    assert schedules.parse("0 1-3 * jan-mar *").next_after(at(0)).hour == 1


# -- decisions ----------------------------------------------------------------------------------------------------


def test_nothing_due_requeues_for_the_next_time_plus_100_ms() -> None:
    plan = decide_at(spec(), at(61), created=at(1))
    assert plan.start is None
    assert plan.requeue_after == pytest.approx(240 - 1 + 0.1)
    assert plan.status.next_schedule_time == at(300)


def test_a_due_time_starts_a_run_named_by_its_minute() -> None:
    plan = decide_at(spec(), at(300.5), created=at(1))
    assert plan.start == at(300)
    assert run_name("backup", at(300)) == f"backup-{int(at(300).timestamp()) // 60}"
    assert plan.status.last_schedule_time == at(300)


def test_after_downtime_only_the_newest_missed_run_starts() -> None:
    status = DockerCronJobStatus(last_schedule_time=at(0))
    plan = decide_at(spec(), at(3600 + 30), status=status)
    assert plan.start == at(3600), "11 missed; one run, for the newest"
    assert [e.reason for e in plan.events] == []


def test_a_missed_run_outside_the_starting_deadline_does_not_start() -> None:
    status = DockerCronJobStatus(last_schedule_time=at(0))
    late = decide_at(spec(startingDeadlineSeconds=20), at(300 + 60), status=status)
    assert late.start is None
    assert late.status.last_schedule_time == at(0)
    on_time = decide_at(spec(startingDeadlineSeconds=120), at(300 + 60), status=status)
    assert on_time.start == at(300)


def test_more_than_100_missed_times_warns() -> None:
    plan = decide_at(spec("* * * * *"), at(200 * 60 + 5), status=DockerCronJobStatus(last_schedule_time=at(0)))
    assert plan.start == at(200 * 60)
    assert [(e.reason, e.warning) for e in plan.events] == [("TooManyMissedTimes", True)]


def test_forbid_skips_while_a_run_is_active_and_starts_it_when_that_ends() -> None:
    job = spec(concurrencyPolicy="Forbid")
    running = [active("backup-1", at(0))]
    status = DockerCronJobStatus(last_schedule_time=at(0))
    plan = decide_at(job, at(301), runs=running, status=status)
    assert plan.start is None
    assert [e.reason for e in plan.events] == ["JobAlreadyActive"]
    assert plan.status.last_schedule_time == at(0), "still owed"
    done = [finished("backup-1", 0, "Complete")]
    assert decide_at(job, at(400), runs=done, status=status).start == at(300)


def test_replace_deletes_the_active_run_and_starts_the_new_one() -> None:
    plan = decide_at(spec(concurrencyPolicy="Replace"), at(301), runs=[active("backup-1", at(0))],
                     status=DockerCronJobStatus(last_schedule_time=at(0)))  # fmt: skip
    assert (plan.start, plan.delete) == (at(300), ("backup-1",))


def test_allow_overlaps() -> None:
    plan = decide_at(spec(), at(301), runs=[active("backup-1", at(0))],
                     status=DockerCronJobStatus(last_schedule_time=at(0)))  # fmt: skip
    assert (plan.start, plan.delete, plan.status.active_count) == (at(300), (), 1)


def test_a_run_that_exists_already_is_not_started_again() -> None:
    existing = [active(run_name("backup", at(300)), at(300))]
    plan = decide_at(spec(), at(301), runs=existing, status=DockerCronJobStatus(last_schedule_time=at(0)))
    assert plan.start is None
    assert plan.status.last_schedule_time == at(300)


def test_history_limits_prune_the_oldest_finished_runs() -> None:
    runs = [finished(f"ok-{i}", i * 300, "Complete") for i in range(5)]
    runs += [finished(f"bad-{i}", i * 300 + 1, "Failed") for i in range(3)]
    runs.append(active("running", at(2000)))
    plan = decide_at(spec(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1), at(2001), runs=runs)
    assert sorted(plan.delete) == ["bad-0", "bad-1", "ok-0", "ok-1", "ok-2"]
    assert plan.status.last_successful_time == at(4 * 300 + 10)


def test_suspended_starts_nothing_and_shows_no_next_time() -> None:
    plan = decide_at(spec(suspend=True), at(301))
    assert (plan.start, plan.requeue_after, plan.status.next_schedule_time) == (None, None, None)


def test_an_unknown_time_zone_is_a_condition_and_one_event_not_a_crash_loop() -> None:
    job = spec(timeZone="Mars/Olympus_Mons")
    plan = decide_at(job, at(301))
    assert (plan.start, plan.requeue_after) == (None, None)
    scheduled = plan.status.conditions[0]
    assert (scheduled.type, scheduled.status.value, scheduled.reason) == ("Scheduled", "False", "UnknownTimeZone")
    assert [e.reason for e in plan.events] == ["UnknownTimeZone"]
    again = decide_at(job, at(400), status=plan.status)
    assert again.events == (), "the same problem is not announced twice"


def test_a_schedule_in_a_time_zone_is_due_at_its_wall_clock_time() -> None:
    job = spec("0 9 * * *", timeZone="Europe/Berlin")
    nine_berlin = datetime.datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    plan = decide_at(
        job, nine_berlin + datetime.timedelta(seconds=1), created=nine_berlin - datetime.timedelta(hours=1)
    )
    assert plan.start == nine_berlin
