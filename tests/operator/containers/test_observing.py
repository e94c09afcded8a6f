"""observe() reads inspect bodies; phase_for() maps state and restart policy to a phase like Kubernetes does."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from dockyard_operator.api.dockercontainer import ContainerPhase, RestartPolicy
from dockyard_operator.containers import observing
from dockyard_operator.containers.observing import Observed, is_ready, observe, parse_docker_time, phase_for

UTC = datetime.UTC


def inspect_body(**state: Any) -> dict[str, Any]:
    base_state = {
        "Status": "running",
        "Running": True,
        "Paused": False,
        "Restarting": False,
        "OOMKilled": False,
        "Dead": False,
        "Pid": 10,
        "ExitCode": 0,
        "Error": "",
        "StartedAt": "2026-11-26T06:40:01.123456789Z",
        "FinishedAt": "0001-01-01T00:00:00Z",
    }
    base_state.update(state)
    return {
        "Id": "c" * 64,
        "Image": "sha256:" + "b" * 64,
        "RestartCount": 2,
        "State": base_state,
        "Config": {"Labels": {"dockyard.dev/spec-hash": "abc123", "other": "x"}},
        "NetworkSettings": {
            "IPAddress": "",
            "Networks": {
                "zeta": {"IPAddress": "10.0.0.9"},
                "bridge": {"IPAddress": "172.17.0.5"},
                "alpha": {"IPAddress": ""},
            },
        },
    }


def test_observe_a_running_container() -> None:
    seen = observe(inspect_body(Health={"Status": "healthy", "FailingStreak": 0, "Log": []}))
    assert seen == Observed(
        container_id="c" * 64,
        state="running",
        running=True,
        health="healthy",
        ip="172.17.0.5",  # "alpha" has no address; "bridge" sorts before "zeta"
        started_at=datetime.datetime(2026, 11, 26, 6, 40, 1, 123456, tzinfo=UTC),
        finished_at=None,
        exit_code=None,
        oom_killed=False,
        image_id="sha256:" + "b" * 64,
        docker_restart_count=2,
        error=None,
        spec_hash="abc123",
    )


def test_observe_an_oom_killed_container() -> None:
    seen = observe(
        inspect_body(
            Status="exited",
            Running=False,
            OOMKilled=True,
            ExitCode=137,
            FinishedAt="2026-11-26T06:41:02.5Z",
            Error="",
        )
    )
    assert (seen.state, seen.running, seen.exit_code, seen.oom_killed) == ("exited", False, 137, True)
    assert seen.finished_at == datetime.datetime(2026, 11, 26, 6, 41, 2, 500000, tzinfo=UTC)


def test_observe_tolerates_sparse_bodies() -> None:
    """A container that never started, without networks, health, labels or image: nothing crashes."""
    seen = observe({"Id": "x", "State": {"Status": "created", "ExitCode": 0, "StartedAt": "0001-01-01T00:00:00Z"}})
    assert seen.state == "created"
    assert seen.exit_code is None
    assert seen.started_at is None
    assert seen.ip is None
    assert seen.health is None
    assert seen.image_id is None
    assert seen.spec_hash is None
    assert observe({}).state == ""


def test_observe_health_none_is_no_health() -> None:
    """Docker reports "none" for a disabled check; we report no health."""
    assert observe(inspect_body(Health={"Status": "none"})).health is None
    assert observe(inspect_body(Health={"Status": "starting"})).health == "starting"


def test_observe_falls_back_to_the_legacy_ip_and_ipv6() -> None:
    body = inspect_body()
    body["NetworkSettings"] = {"IPAddress": "172.17.0.9", "Networks": {}}
    assert observe(body).ip == "172.17.0.9"
    body["NetworkSettings"] = {"Networks": {"v6only": {"IPAddress": "", "GlobalIPv6Address": "fd00::5"}}}
    assert observe(body).ip == "fd00::5"


def test_observe_reports_a_start_error() -> None:
    seen = observe(inspect_body(Status="created", Running=False, ExitCode=127, Error='exec: "nope": not found'))
    assert seen.error == 'exec: "nope": not found'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T06:40:01Z", datetime.datetime(2026, 11, 26, 6, 40, 1, tzinfo=UTC)),
        ("2026-11-26T06:40:01.123456789Z", datetime.datetime(2026, 11, 26, 6, 40, 1, 123456, tzinfo=UTC)),
        ("2026-11-26T06:40:01.1Z", datetime.datetime(2026, 11, 26, 6, 40, 1, 100000, tzinfo=UTC)),
        ("2026-11-26T08:40:01.5+02:00", datetime.datetime(2026, 11, 26, 6, 40, 1, 500000, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        ("yesterday", None),
        (None, None),
        (12, None),
    ],
)
def test_parse_docker_time(text: object, expected: datetime.datetime | None) -> None:
    assert parse_docker_time(text) == expected


RUNNING = observe(inspect_body())


def with_state(state: str, exit_code: int | None = None) -> Observed:
    return dataclasses.replace(RUNNING, state=state, running=state == "running", exit_code=exit_code)


@pytest.mark.parametrize(
    ("observed", "policy", "phase"),
    [
        (None, RestartPolicy.ALWAYS, ContainerPhase.PENDING),
        (with_state("created"), RestartPolicy.NEVER, ContainerPhase.CREATING),
        (with_state("running"), RestartPolicy.NEVER, ContainerPhase.RUNNING),
        (with_state("paused"), RestartPolicy.ALWAYS, ContainerPhase.RUNNING),
        (with_state("restarting", 1), RestartPolicy.ALWAYS, ContainerPhase.RUNNING),
        (with_state("exited", 0), RestartPolicy.NEVER, ContainerPhase.SUCCEEDED),
        (with_state("exited", 0), RestartPolicy.ON_FAILURE, ContainerPhase.SUCCEEDED),
        (with_state("exited", 0), RestartPolicy.ALWAYS, ContainerPhase.RUNNING),
        (with_state("exited", 2), RestartPolicy.NEVER, ContainerPhase.FAILED),
        (with_state("exited", 137), RestartPolicy.ON_FAILURE, ContainerPhase.RUNNING),
        (with_state("exited", 137), RestartPolicy.ALWAYS, ContainerPhase.RUNNING),
        (with_state("dead", 1), RestartPolicy.ALWAYS, ContainerPhase.FAILED),
        (with_state("removing"), RestartPolicy.ALWAYS, ContainerPhase.UNKNOWN),
        (with_state("something-new"), RestartPolicy.ALWAYS, ContainerPhase.UNKNOWN),
    ],
)
def test_phase_for(observed: Observed | None, policy: RestartPolicy, phase: ContainerPhase) -> None:
    assert phase_for(observed, policy) is phase


@pytest.mark.parametrize(
    ("observed", "ready"),
    [
        (None, False),
        (RUNNING, True),
        (dataclasses.replace(RUNNING, health="healthy"), True),
        (dataclasses.replace(RUNNING, health="starting"), False),
        (dataclasses.replace(RUNNING, health="unhealthy"), False),
        (with_state("exited", 0), False),
    ],
)
def test_is_ready(observed: Observed | None, ready: bool) -> None:
    assert is_ready(observed) is ready


def test_health_states_are_dockers() -> None:
    assert frozenset({"starting", "healthy", "unhealthy"}) == observing.HEALTH_STATES
