"""DockerJob decisions on a fake clock: batch/v1 Job's rules, case by case (no I/O, no real time)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from dockyard_operator.api.common import ConditionStatus
from dockyard_operator.api.dockercontainer import ContainerPhase
from dockyard_operator.api.dockerjob import DockerJobSpec, DockerJobStatus, JobPhase
from dockyard_operator.jobs.decisions import Attempt, Facts, Plan, decide, failure_backoff

T0 = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def spec(**fields: Any) -> DockerJobSpec:
    template = {"spec": {"image": "busybox", "hostRef": {"name": "edge-1"}}}
    restart = fields.pop("restartPolicy", None)
    if restart is not None:
        template["spec"]["restartPolicy"] = restart
    return DockerJobSpec.model_validate({"template": template, **fields})


def attempt(name: str, created: float, phase: ContainerPhase | None = None, **kw: Any) -> Attempt:
    finished = kw.pop("finished", None)
    return Attempt(
        name=name,
        created=at(created),
        phase=phase,
        finished_at=at(finished) if finished is not None else None,
        **kw,
    )


def failed(name: str, created: float, finished: float, code: int = 1) -> Attempt:
    return attempt(name, created, ContainerPhase.FAILED, finished=finished, exit_code=code)


def succeeded(name: str, created: float, finished: float) -> Attempt:
    return attempt(name, created, ContainerPhase.SUCCEEDED, finished=finished, exit_code=0)


def run(job: DockerJobSpec, attempts: list[Attempt], now: float, status: DockerJobStatus | None = None) -> Plan:
    return decide(Facts(spec=job, status=status or DockerJobStatus(), generation=1, attempts=tuple(attempts),
                        now=at(now)))  # fmt: skip


def condition(plan: Plan, type_: str) -> tuple[str, str] | None:
    for c in plan.status.conditions:
        if c.type == type_:
            return c.status.value, c.reason
    return None


def test_a_new_job_starts_one_attempt_and_its_clock() -> None:
    plan = run(spec(), [], now=0)
    assert (plan.create, plan.delete, plan.status.phase) == (1, (), JobPhase.RUNNING)
    assert plan.status.active == 1, "counted at once: no second status write when the informer shows it"
    assert plan.status.start_time == T0
    assert plan.status.completions == "0/1"


def test_the_back_off_doubles_from_10_s_to_6_min_exactly() -> None:
    assert [failure_backoff(n) for n in range(1, 10)] == [10, 20, 40, 80, 160, 320, 360, 360, 360]
    assert failure_backoff(0) == 0


@pytest.mark.parametrize("failures", [1, 2, 3, 4, 5, 6, 7])
def test_after_n_failures_the_next_attempt_waits_the_back_off_from_the_newest_failure(failures: int) -> None:
    job = spec(backoffLimit=10)
    history = [failed(f"a{i}", created=i * 1000, finished=i * 1000 + 5) for i in range(failures)]
    newest = (failures - 1) * 1000 + 5
    delay = failure_backoff(failures)
    seen = run(job, history, now=newest, status=DockerJobStatus(start_time=T0))  # the operator sees it fail
    assert (seen.create, seen.status.last_failure_time) == (0, at(newest))
    assert seen.requeue_after == pytest.approx(delay)
    early = run(job, history, now=newest + delay - 1, status=seen.status)
    assert early.create == 0
    assert early.requeue_after == pytest.approx(1.0)
    on_time = run(job, history, now=newest + delay, status=seen.status)
    assert on_time.create == 1


def test_the_back_off_runs_on_the_operators_clock_not_a_docker_hosts() -> None:
    """A host an hour ahead (or behind) must not stretch (or skip) the back-off."""
    job = spec(backoffLimit=10)
    for skew in (3600, -3600):
        history = [failed("a", created=0, finished=5 + skew)]
        seen = run(job, history, now=5, status=DockerJobStatus(start_time=T0))
        assert seen.requeue_after == pytest.approx(10.0)
        assert run(job, history, now=15, status=seen.status).create == 1


def test_a_success_resets_the_back_off_streak() -> None:
    job = spec(completions=3, backoffLimit=10)
    history = [failed("a", 0, 5), failed("b", 20, 25), succeeded("c", 70, 80), failed("d", 100, 105)]
    seen = run(job, history, now=105, status=DockerJobStatus(start_time=T0))
    assert seen.requeue_after == pytest.approx(10.0), "one failure since the success: 10 s, not 40"
    assert run(job, history, now=115, status=seen.status).create == 1


def test_more_failures_than_the_backoff_limit_fail_the_job_and_say_which_output_to_show() -> None:
    job = spec(backoffLimit=2)
    history = [failed("a", 0, 5), failed("b", 20, 25), failed("c", 60, 65)]
    plan = run(job, history, now=70, status=DockerJobStatus(start_time=T0))
    assert condition(plan, "Failed") == ("True", "BackoffLimitExceeded")
    assert plan.status.phase is JobPhase.FAILED
    assert (plan.create, plan.status.failed, plan.output_of) == (0, 3, "c")
    assert plan.status.duration == "1m10s"
    assert [(e.reason, e.warning) for e in plan.events] == [("BackoffLimitExceeded", True)]
    two = run(job, history[:2], now=70, status=DockerJobStatus(start_time=T0))
    assert condition(two, "Failed") is None, "failed == backoffLimit is still within it"


def test_on_failure_restarts_reaching_the_limit_fail_the_job() -> None:
    job = spec(backoffLimit=3, restartPolicy="OnFailure")
    crashing = attempt("a", 0, ContainerPhase.RUNNING, restarts=3)
    plan = run(job, [crashing], now=100, status=DockerJobStatus(start_time=T0))
    assert condition(plan, "Failed") == ("True", "BackoffLimitExceeded")
    assert plan.delete == ("a",)
    assert run(job, [attempt("a", 0, ContainerPhase.RUNNING, restarts=2)], now=100).create == 0


def test_the_deadline_stops_running_attempts_and_fails_the_job() -> None:
    job = spec(activeDeadlineSeconds=5)
    running = attempt("a", 0, ContainerPhase.RUNNING, ready=True)
    before = run(job, [running], now=3, status=DockerJobStatus(start_time=T0))
    assert before.delete == ()
    assert before.requeue_after == pytest.approx(2.0)
    plan = run(job, [running], now=5, status=DockerJobStatus(start_time=T0))
    assert condition(plan, "Failed") == ("True", "DeadlineExceeded")
    assert (plan.delete, plan.status.failed, plan.status.active) == (("a",), 1, 0)


def test_completions_and_parallelism() -> None:
    job = spec(completions=5, parallelism=2)
    assert run(job, [], now=0).create == 2
    two_done = [succeeded("a", 0, 10), succeeded("b", 0, 10), attempt("c", 10, ContainerPhase.RUNNING)]
    assert run(job, two_done, now=11).create == 1, "3 missing, 1 running: 1 more"
    four_done = [succeeded(n, 0, 10) for n in "abcd"] + [attempt("e", 10, ContainerPhase.RUNNING)]
    assert run(job, four_done, now=11).create == 0, "1 missing, 1 running: never more than needed"
    done = run(job, [succeeded(n, 0, 10) for n in "abcde"], now=12, status=DockerJobStatus(start_time=T0))
    assert condition(done, "Complete") == ("True", "CompletionsReached")
    assert (done.status.completions, done.status.completion_time, done.status.phase) == ("5/5", at(12),
                                                                                        JobPhase.COMPLETE)  # fmt: skip


def test_parallelism_lowered_stops_the_cheapest_attempts() -> None:
    job = spec(completions=5, parallelism=1)
    active = [
        attempt("ready", 0, ContainerPhase.RUNNING, ready=True),
        attempt("creating", 5, ContainerPhase.CREATING),
        attempt("pending", 6, ContainerPhase.PENDING),
    ]
    assert set(run(job, active, now=10).delete) == {"creating", "pending"}


def test_an_attempt_on_an_unreachable_host_is_still_active_and_not_a_failure() -> None:
    job = spec(backoffLimit=0)
    cut_off = attempt("a", 0, ContainerPhase.UNKNOWN)
    plan = run(job, [cut_off], now=600)
    assert (plan.create, plan.delete, plan.status.active, plan.status.failed) == (0, (), 1, 0)
    assert condition(plan, "Failed") is None


def test_failure_policy_fail_job_ignore_and_count() -> None:
    rules = {"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [137]}},
        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [0]}},
    ]}  # fmt: skip
    job = spec(backoffLimit=1, failurePolicy=rules)
    fatal = run(job, [failed("a", 0, 5, code=42)], now=6, status=DockerJobStatus(start_time=T0))
    assert condition(fatal, "Failed") == ("True", "FailurePolicy")
    assert "exit code 42 matching FailJob rule at index 0" in fatal.status.conditions[0].message
    later = [failed("a", 0, 5, code=42), failed("b", 1, 6, code=3)]
    assert run(job, later, now=7, status=DockerJobStatus(start_time=T0)).output_of == "a", "the output of the culprit"
    ignored = [failed(n, i * 100, i * 100 + 5, code=137) for i, n in enumerate("abc")]
    seen = run(job, ignored, now=205, status=DockerJobStatus(start_time=T0))
    assert (condition(seen, "Failed"), seen.status.failed) == (None, 0)
    assert seen.requeue_after == pytest.approx(40.0), "ignored failures still feed the back-off"
    assert run(job, ignored, now=1000, status=seen.status).create == 1
    counted = run(job, [failed("a", 0, 5, code=3), failed("b", 30, 35, code=3)], now=40,
                  status=DockerJobStatus(start_time=T0))  # fmt: skip
    assert condition(counted, "Failed") == ("True", "BackoffLimitExceeded")


def test_suspend_stops_attempts_without_counting_them_and_resume_restarts_the_clock() -> None:
    job = spec(activeDeadlineSeconds=100)
    running = attempt("a", 0, ContainerPhase.RUNNING)
    suspended = run(job.model_copy(update={"suspend": True}), [running], now=50,
                    status=DockerJobStatus(start_time=T0))  # fmt: skip
    assert (suspended.delete, suspended.create, suspended.status.phase) == (("a",), 0, JobPhase.SUSPENDED)
    assert condition(suspended, "Suspended") == ("True", "JobSuspended")
    assert (suspended.status.failed, suspended.status.start_time) == (0, None)
    resumed = run(job, [], now=500, status=suspended.status)
    assert condition(resumed, "Suspended") == ("False", "JobResumed")
    assert (resumed.create, resumed.status.start_time) == (1, at(500))
    assert resumed.requeue_after == pytest.approx(100.0), "the deadline counts from the resume"


def test_ttl_deletes_a_finished_job_when_it_has_passed() -> None:
    job = spec(ttlSecondsAfterFinished=5)
    done = run(job, [succeeded("a", 0, 10)], now=10, status=DockerJobStatus(start_time=T0))
    assert done.requeue_after == pytest.approx(5.0)
    later = run(job, [succeeded("a", 0, 10)], now=13, status=done.status)
    assert not later.delete_job
    assert later.requeue_after == pytest.approx(2.0)
    expired = run(job, [succeeded("a", 0, 10)], now=15, status=done.status)
    assert expired.delete_job
    zero = run(spec(ttlSecondsAfterFinished=0), [succeeded("a", 0, 10)], now=10, status=DockerJobStatus(start_time=T0))
    assert zero.requeue_after == pytest.approx(0.5), "TTL 0: looked at again at once, never read as done"


def test_a_finished_job_stays_finished_and_counts_never_go_down() -> None:
    job = spec(backoffLimit=0)
    plan = run(job, [failed("a", 0, 5)], now=6, status=DockerJobStatus(start_time=T0))
    assert plan.status.failed == 1
    again = run(job, [], now=100, status=plan.status)  # someone deleted the failed attempt
    assert (again.create, again.status.failed) == (0, 1)
    assert condition(again, "Failed") == ("True", "BackoffLimitExceeded")
    assert again.status.conditions[0].status is ConditionStatus.TRUE
