"""The DockerJob and DockerCronJob CRDs on the real kube-apiserver: defaults, CEL rules, immutability, and the
models agreeing with the server on every case."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pydantic
import pytest
from dockyard_e2e import Kubectl

from dockyard_operator.api import dockercronjob, dockerjob

pytestmark = pytest.mark.kube

CONTAINER: dict[str, Any] = {"image": "dockyard-test/busybox:1", "hostRef": {"name": "edge-1"}}


def job(namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"template": {"spec": dict(CONTAINER)}}
    body.update(spec)
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerJob",
        "metadata": {"name": f"dj-{uuid.uuid4().hex[:8]}", "namespace": namespace},
        "spec": body,
    }


def cronjob(namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": CONTAINER}}}}
    body.update(spec)
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerCronJob",
        "metadata": {"name": f"dcj-{uuid.uuid4().hex[:8]}", "namespace": namespace},
        "spec": body,
    }


def test_job_defaults_are_batch_v1s_and_the_models_read_them(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl.create(job(namespace))
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"], spec["suspend"]) == (1, 1, 6, False)
    assert spec["template"]["spec"]["restartPolicy"] == "Never", "a job's attempts default to Never"
    dockerjob.DockerJobSpec.model_validate(spec)


def test_cronjob_defaults_are_batch_v1s_and_the_models_read_them(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl.create(cronjob(namespace, schedule="@daily", timeZone="Europe/Berlin"))
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"]) == ("Allow", False)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 6
    dockercronjob.DockerCronJobSpec.model_validate(spec)


FAIL_JOB_42 = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}

INVALID_JOBS: list[tuple[str, dict[str, Any], str]] = [
    (
        "restartPolicy Always",
        {"template": {"spec": {**CONTAINER, "restartPolicy": "Always"}}},
        'supported values: "Never", "OnFailure"',
    ),
    (
        "failurePolicy with OnFailure",
        {"template": {"spec": {**CONTAINER, "restartPolicy": "OnFailure"}}, "failurePolicy": FAIL_JOB_42},
        "failurePolicy needs template.spec.restartPolicy Never",
    ),
    (
        "exit code 0 in an In rule",
        {"failurePolicy": {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [0, 1]}}]}},
        "0 is success and never a failure",
    ),
    (
        "an exit code twice",
        {"failurePolicy": {"rules": [{"action": "Count", "onExitCodes": {"operator": "In", "values": [3, 3]}}]}},
        "Duplicate value",
    ),
    (
        "unknown action",
        {"failurePolicy": {"rules": [{"action": "Retry", "onExitCodes": {"operator": "In", "values": [3]}}]}},
        'supported values: "FailJob", "Ignore", "Count"',
    ),
    ("negative backoffLimit", {"backoffLimit": -1}, "spec.backoffLimit"),
    ("zero completions", {"completions": 0}, "spec.completions"),
    ("zero deadline", {"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds"),
    (
        "an invalid attempt",
        {"template": {"spec": {"image": "busybox"}}},
        "exactly one of hostRef, hostSelector must be set",
    ),
]


@pytest.mark.parametrize(("what", "fields", "message"), INVALID_JOBS, ids=[case[0] for case in INVALID_JOBS])
def test_invalid_job_is_rejected_by_server_and_models(
    kubectl: Kubectl, namespace: str, what: str, fields: dict[str, Any], message: str
) -> None:
    obj = job(namespace, **copy.deepcopy(fields))
    result = kubectl.create(obj)
    assert result.returncode != 0, f"{what}: accepted by the API server"
    assert message in result.stderr, result.stderr
    with pytest.raises(pydantic.ValidationError):
        dockerjob.DockerJobSpec.model_validate(obj["spec"])


INVALID_CRONJOBS: list[tuple[str, dict[str, Any], str]] = [
    ("minute 61", {"schedule": "61 * * * *"}, "schedule must be five cron fields"),
    ("four fields", {"schedule": "* * * *"}, "schedule must be five cron fields"),
    ("day of week 7", {"schedule": "0 0 * * 7"}, "schedule must be five cron fields"),
    ("L", {"schedule": "0 0 L * *"}, "schedule must be five cron fields"),
    ("a TZ prefix", {"schedule": "TZ=UTC 0 * * * *"}, "a time zone goes in timeZone"),
    ("time zone with a space", {"timeZone": "Europe/New York"}, "spec.timeZone"),
    ("unknown concurrencyPolicy", {"concurrencyPolicy": "Queue"}, 'supported values: "Allow", "Forbid", "Replace"'),
    ("negative history", {"successfulJobsHistoryLimit": -1}, "spec.successfulJobsHistoryLimit"),
]


@pytest.mark.parametrize(("what", "fields", "message"), INVALID_CRONJOBS, ids=[case[0] for case in INVALID_CRONJOBS])
def test_invalid_cronjob_is_rejected_by_server_and_models(
    kubectl: Kubectl, namespace: str, what: str, fields: dict[str, Any], message: str
) -> None:
    obj = cronjob(namespace, **copy.deepcopy(fields))
    result = kubectl.create(obj)
    assert result.returncode != 0, f"{what}: accepted by the API server"
    assert message in result.stderr, result.stderr
    with pytest.raises(pydantic.ValidationError):
        dockercronjob.DockerCronJobSpec.model_validate(obj["spec"])


def test_a_jobs_template_and_completions_are_immutable(kubectl: Kubectl, namespace: str) -> None:
    obj = job(namespace)
    assert kubectl.create(obj).returncode == 0
    name = obj["metadata"]["name"]
    for patch, message in (
        ({"spec": {"template": {"spec": {"image": "other"}}}}, "template is immutable"),
        ({"spec": {"completions": 3}}, "completions is immutable"),
    ):
        refused = kubectl.run("patch", "dj", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch),
                              check=False)  # fmt: skip
        assert refused.returncode != 0
        assert message in refused.stderr
    allowed = kubectl.run("patch", "dj", name, "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    assert allowed.returncode == 0


def test_short_names_and_the_category(kubectl: Kubectl, namespace: str) -> None:
    j, c = job(namespace), cronjob(namespace)
    assert kubectl.create(j).returncode == 0
    assert kubectl.create(c).returncode == 0
    listing = kubectl.run("get", "dockyard", "-n", namespace, "-o", "name").stdout.split()
    assert f"dockerjob.dockyard.dev/{j['metadata']['name']}" in listing
    assert f"dockercronjob.dockyard.dev/{c['metadata']['name']}" in listing
    assert c["metadata"]["name"] in kubectl.run("get", "dcj", "-n", namespace, "-o", "name").stdout
    assert j["metadata"]["name"] in kubectl.run("get", "dj", "-n", namespace, "-o", "name").stdout


@pytest.mark.parametrize(
    ("kind", "limit", "message"),
    [
        ("DockerJob", 63, "at most 63 characters: its attempts carry it"),
        ("DockerCronJob", 52, "at most 52 characters: a run is a DockerJob named"),
        ("DockerDeployment", 63, "at most 63 characters: its ControllerRevisions carry it"),
    ],
)
def test_names_that_would_not_fit_their_childrens_labels_are_refused(
    kubectl: Kubectl, namespace: str, kind: str, limit: int, message: str
) -> None:
    make = {"DockerJob": job, "DockerCronJob": cronjob}.get(kind)
    for length in (limit, limit + 1):
        if make is not None:
            obj = make(namespace)
        else:
            obj = {
                "apiVersion": "dockyard.dev/v1alpha1",
                "kind": kind,
                "metadata": {"namespace": namespace},
                "spec": {"selector": {"matchLabels": {"app": "x"}},
                         "template": {"metadata": {"labels": {"app": "x"}}, "spec": CONTAINER}},
            }  # fmt: skip
        obj["metadata"]["name"] = ("n" + uuid.uuid4().hex * 2)[:length]
        result = kubectl.create(obj)
        if length == limit:
            assert result.returncode == 0, f"{kind} named with {limit} characters: {result.stderr}"
        else:
            assert result.returncode != 0, f"{kind} named with {length} characters accepted"
            assert message in result.stderr, result.stderr
