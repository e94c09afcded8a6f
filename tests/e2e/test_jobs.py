"""DockerJob and DockerCronJob end to end: the real API server and kube-controller-manager (garbage collector),
the real dockerd behind a real agent (a tunnel DockerHost), and the operator as a process."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiodocker
import pytest
from dockyard_e2e import (
    SESSION,
    Agent,
    condition,
    events_for,
    eventually,
    join_tunnel_host,
    kubectl,
    leave_tunnel_host,
    wait_connected,
)

from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.errors import NotFoundError
from dockyard_operator.kube.resources import DOCKERCONTAINERS, DOCKERCRONJOBS, DOCKERJOBS

pytestmark = [pytest.mark.kube, pytest.mark.docker]

SITE = {"site": f"jobs-{SESSION}"}


@pytest.fixture(scope="module")
def edge(devenv: Any, operator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tunnel DockerHost with a real agent: where every attempt in this module runs."""
    name = f"jobs-{SESSION}"
    agent: Agent = join_tunnel_host(devenv, operator, name, SITE, tmp_path_factory.mktemp("jobs"))
    try:
        wait_connected(devenv, [name])
        yield name
    finally:
        leave_tunnel_host(devenv, name, agent)


def job(name: str, namespace: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "template": {
                "spec": {
                    "image": "dockyard-test/busybox:1",
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", script],
                    "hostSelector": {"matchLabels": SITE},
                    "stopGracePeriodSeconds": 2,
                }
            },
            **spec,
        },
    }


def apply(devenv: Any, manifest: dict[str, Any]) -> None:
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))


async def attempts_of(kube: KubeClient, namespace: str, name: str) -> list[dict[str, Any]]:
    listed = await kube.list(DOCKERCONTAINERS, namespace=namespace, label_selector=f"dockyard.dev/job-name={name}")
    return sorted(listed["items"], key=lambda o: (o["metadata"]["creationTimestamp"], o["metadata"]["name"]))


async def finished(kube: KubeClient, namespace: str, name: str, kind: str, *, timeout: float = 120) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await kube.get(DOCKERJOBS, name, namespace=namespace)
        return obj if condition(obj, kind).get("status") == "True" else None

    return await eventually(check, timeout=timeout, what=f"DockerJob {name} {kind}")


def when(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_job_that_succeeds_is_complete_and_its_attempt_stays_inspectable(
    devenv: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, edge: str
) -> None:
    name = f"ok-{uuid.uuid4().hex[:4]}"
    apply(devenv, job(name, namespace, "echo all good"))
    kubectl(devenv, "wait", "--for=condition=Complete", f"dockerjob/{name}", "-n", namespace, "--timeout=120s")
    obj = await kube.get(DOCKERJOBS, name, namespace=namespace)
    status = obj["status"]
    assert (status["phase"], status["succeeded"], status["failed"], status["completions"]) == ("Complete", 1, 0, "1/1")
    assert condition(obj, "Complete")["reason"] == "CompletionsReached"
    (attempt,) = await attempts_of(kube, namespace, name)
    assert attempt["status"]["phase"] == "Succeeded"
    assert attempt["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    container = await docker.containers.get(attempt["status"]["containerID"])
    assert container._container["State"]["ExitCode"] == 0, "the attempt's container stays, exited, inspectable"
    table = kubectl(devenv, "get", "dj", name, "-n", namespace).stdout
    assert "Complete" in table
    assert "1/1" in table
    kubectl(devenv, "delete", "dj", name, "-n", namespace, "--timeout=60s")


async def test_a_failing_job_retries_after_growing_gaps_and_fails_with_its_output(
    devenv: Any, kube: KubeClient, namespace: str, edge: str
) -> None:
    name = f"fail-{uuid.uuid4().hex[:4]}"
    apply(devenv, job(name, namespace, "echo 'cannot reach the database' >&2; exit 1", backoffLimit=2))
    obj = await finished(kube, namespace, name, "Failed", timeout=150)
    failed = condition(obj, "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "cannot reach the database" in failed["message"], "the last output says why"
    assert obj["status"]["failed"] == 3
    attempts = await attempts_of(kube, namespace, name)
    assert len(attempts) == 3, "backoffLimit 2: the third failure ends it"
    # Each attempt starts no sooner than the back-off after the previous one ended: 10 s, then 20 s.
    gaps = [
        (when(later["metadata"]["creationTimestamp"]) - when(earlier["status"]["finishedAt"])).total_seconds()
        for earlier, later in itertools.pairwise(attempts)
    ]
    assert gaps[0] >= 9, gaps  # whole-second timestamps
    assert gaps[1] >= 19, gaps
    assert gaps[1] > gaps[0]
    reasons = [e["reason"] for e in await events_for(kube, namespace, name)]
    assert "BackoffLimitExceeded" in reasons
    kubectl(devenv, "delete", "dj", name, "-n", namespace, "--timeout=60s")


async def test_the_deadline_stops_a_running_attempt(
    devenv: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, edge: str
) -> None:
    name = f"slow-{uuid.uuid4().hex[:4]}"
    apply(devenv, job(name, namespace, "trap 'exit 143' TERM; sleep 600 & wait", activeDeadlineSeconds=5))
    obj = await finished(kube, namespace, name, "Failed", timeout=60)
    assert condition(obj, "Failed")["reason"] == "DeadlineExceeded"
    started, ended = when(obj["status"]["startTime"]), when(obj["status"]["finishTime"])
    assert 5 <= (ended - started).total_seconds() < 30

    async def stopped() -> bool | None:
        found = await docker.containers.list(filters={"label": [f"dockyard.dev/namespace={namespace}"]})
        running = [c for c in found if c._container["Labels"].get("dockyard.dev/name", "").startswith(name)]
        return True if not running else None

    await eventually(stopped, timeout=30, what="the attempt's container stopped")
    kubectl(devenv, "delete", "dj", name, "-n", namespace, "--timeout=60s")


async def test_ttl_removes_the_job_its_attempts_and_their_containers(
    devenv: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, edge: str
) -> None:
    name = f"ttl-{uuid.uuid4().hex[:4]}"
    apply(devenv, job(name, namespace, "true", ttlSecondsAfterFinished=5))
    await finished(kube, namespace, name, "Complete")

    async def gone() -> bool | None:
        try:
            await kube.get(DOCKERJOBS, name, namespace=namespace)
            return None
        except NotFoundError:
            pass
        if await attempts_of(kube, namespace, name):
            return None
        found = await docker.containers.list(all=True, filters={"label": [f"dockyard.dev/namespace={namespace}"]})
        mine = [c for c in found if c._container["Labels"].get("dockyard.dev/name", "").startswith(f"{name}-")]
        return True if not mine else None

    await eventually(gone, timeout=60, what="the DockerJob, its attempts and their containers gone")


async def test_parallelism_bounds_the_attempts_running_at_once(
    devenv: Any, kube: KubeClient, namespace: str, edge: str
) -> None:
    name = f"par-{uuid.uuid4().hex[:4]}"
    apply(devenv, job(name, namespace, "sleep 2", completions=3, parallelism=2))
    most = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        attempts = await attempts_of(kube, namespace, name)
        unfinished = [a for a in attempts if (a.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        most = max(most, len(unfinished))
        obj = await kube.get(DOCKERJOBS, name, namespace=namespace)
        if condition(obj, "Complete").get("status") == "True":
            break
        await asyncio.sleep(0.1)
    assert condition(obj, "Complete").get("status") == "True"
    assert most == 2, f"at most 2 at once, and 2 were used (saw {most})"
    assert len(await attempts_of(kube, namespace, name)) == 3
    kubectl(devenv, "delete", "dj", name, "-n", namespace, "--timeout=60s")


async def test_an_operator_killed_mid_job_resumes_without_a_second_attempt(
    devenv: Any, operator: Any, kube: KubeClient, namespace: str, edge: str
) -> None:
    name = f"crash-{uuid.uuid4().hex[:4]}"
    apply(devenv, job(name, namespace, "sleep 12", backoffLimit=0))

    async def running() -> bool | None:
        attempts = await attempts_of(kube, namespace, name)
        return True if attempts and (attempts[0].get("status") or {}).get("phase") == "Running" else None

    await eventually(running, timeout=60, what="the attempt running")
    operator.kill()
    operator.start()  # waits for the dead leader's Lease, then takes over
    obj = await finished(kube, namespace, name, "Complete", timeout=120)
    assert obj["status"]["succeeded"] == 1
    assert len(await attempts_of(kube, namespace, name)) == 1
    kubectl(devenv, "delete", "dj", name, "-n", namespace, "--timeout=60s")


async def test_a_cronjob_starts_a_run_within_seconds_of_the_minute_and_forbid_skips_while_it_runs(
    devenv: Any, kube: KubeClient, namespace: str, edge: str
) -> None:
    name = f"cron-{uuid.uuid4().hex[:4]}"
    template = job("x", namespace, "sleep 75")["spec"]
    manifest = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerCronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"schedule": "* * * * *", "concurrencyPolicy": "Forbid", "jobTemplate": {"spec": template}},
    }
    apply(devenv, manifest)

    async def runs() -> list[dict[str, Any]]:
        listed = await kube.list(DOCKERJOBS, namespace=namespace, label_selector=f"dockyard.dev/cronjob-name={name}")
        return list(listed["items"])

    async def first_run() -> dict[str, Any] | None:
        found = await runs()
        return found[0] if found else None

    run = await eventually(first_run, timeout=75, what="the first run")
    scheduled = when(run["metadata"]["annotations"]["dockyard.dev/scheduled-at"])
    created = when(run["metadata"]["creationTimestamp"])
    assert scheduled.second == 0
    assert 0 <= (created - scheduled).total_seconds() <= 5, "started within 5 s of the minute"
    assert run["metadata"]["name"] == f"{name}-{int(scheduled.timestamp()) // 60}"

    async def skipped() -> bool | None:
        reasons = [e["reason"] for e in await events_for(kube, namespace, name)]
        return True if "JobAlreadyActive" in reasons else None

    await eventually(skipped, timeout=75, what="the next minute skipped (Forbid)")
    assert len(await runs()) == 1
    cronjob = await kube.get(DOCKERCRONJOBS, name, namespace=namespace)
    assert cronjob["status"]["activeCount"] == 1
    assert cronjob["status"]["lastScheduleTime"] == run["metadata"]["annotations"]["dockyard.dev/scheduled-at"]
    kubectl(devenv, "delete", "dcj", name, "-n", namespace, "--timeout=90s")
