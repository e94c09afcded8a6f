"""The pydantic models on their own: defaults, the pull-policy rule, selectors, and clear errors."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from dockyard_operator.api import common, dockercontainer, dockerhost
from dockyard_operator.runtime import conditions


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("busybox", "Always"),
        ("busybox:latest", "Always"),
        ("busybox:1.36", "IfNotPresent"),
        ("registry.example.com:5000/team/app", "Always"),
        ("registry.example.com:5000/team/app:2", "IfNotPresent"),
        ("app@sha256:" + "a" * 64, "IfNotPresent"),
        ("app:latest@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_default_pull_policy_follows_kubernetes(image: str, policy: str) -> None:
    """Always for no tag or :latest (a registry port is not a tag), IfNotPresent for other tags and digests."""
    assert dockercontainer.default_pull_policy(image) == policy


def test_explicit_pull_policy_wins() -> None:
    """An explicit imagePullPolicy is used as is."""
    spec = dockercontainer.DockerContainerSpec.model_validate(
        {"image": "busybox", "imagePullPolicy": "Never", "hostRef": {"name": "h"}}
    )
    assert spec.effective_image_pull_policy is dockercontainer.PullPolicy.NEVER


def test_spec_defaults() -> None:
    """The documented defaults, as the operator sees them."""
    spec = dockercontainer.DockerContainerSpec.model_validate({"image": "busybox:1", "hostRef": {"name": "h"}})
    assert spec.restart_policy is dockercontainer.RestartPolicy.ALWAYS
    assert spec.drift_policy is dockercontainer.DriftPolicy.ENFORCE
    assert spec.stop_grace_period_seconds == 10
    assert spec.image_pull_policy is None
    health = dockercontainer.HealthCheck.model_validate({"exec": {"command": ["true"]}})
    assert (health.interval_seconds, health.timeout_seconds, health.retries, health.start_period_seconds) == (
        30,
        30,
        3,
        0,
    )
    assert health.restart_on_unhealthy is False


def test_python_names_and_json_names_both_work() -> None:
    """Code builds models with snake_case; JSON uses camelCase; dumping by alias gives the API's names."""
    spec = dockercontainer.DockerContainerSpec(image="busybox:1", host_ref=common.LocalObjectReference(name="h"))
    assert spec.model_dump(by_alias=True, exclude_none=True)["hostRef"] == {"name": "h"}
    check = dockercontainer.HealthCheck.model_validate({"exec": {"command": ["true"]}})
    assert check.model_dump(by_alias=True, exclude_none=True)["exec"] == {"command": ["true"]}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"image": "busybox"}, "exactly one of hostRef, hostSelector must be set"),
        ({"image": "busybox", "hostRef": {"name": "h"}, "restartPolicy": "Sometimes"}, "restartPolicy"),
        ({"image": "busybox", "hostRef": {"name": "h"}, "resources": {"limits": {"cpu": "lots"}}}, "not a quantity"),
        ({"image": "busybox", "hostRef": {"name": "h"}, "resources": {"limits": {"memory": "0"}}}, "greater than zero"),
        ({"image": "busybox", "hostRef": {"name": "h"}, "bogus": 1}, "bogus"),
    ],
)
def test_invalid_specs_name_the_problem(spec: dict[str, Any], message: str) -> None:
    """ValidationError messages say what is wrong."""
    with pytest.raises(pydantic.ValidationError, match=message):
        dockercontainer.DockerContainerSpec.model_validate(spec)


def test_bool_is_not_a_quantity() -> None:
    """`cpu: true` is a type error, not "1"."""
    with pytest.raises(pydantic.ValidationError):
        dockercontainer.ResourceLimits.model_validate({"cpu": True})


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"zone": "a"}}, {"zone": "a", "x": "y"}, True),
        ({"matchLabels": {"zone": "a"}}, {"zone": "b"}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}, {"zone": "b"}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}, {}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, {"zone": "a"}, False),
        ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, {"gpu": ""}, True),
        ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, {"gpu": ""}, False),
    ],
)
def test_label_selector_matches_like_kubernetes(
    selector: dict[str, Any], labels: dict[str, str], selected: bool
) -> None:
    """matchLabels and matchExpressions are ANDed; operators mean what they mean in Kubernetes."""
    assert common.LabelSelector.model_validate(selector).matches(labels) is selected


def test_host_connection_mode() -> None:
    """No url means tunnel; a url means direct."""
    assert dockerhost.DockerHostSpec().connection_mode is dockerhost.ConnectionMode.TUNNEL
    assert (
        dockerhost.DockerHostSpec(tunnel=dockerhost.TunnelConnection()).connection_mode
        is dockerhost.ConnectionMode.TUNNEL
    )
    direct = dockerhost.DockerHostSpec.model_validate({"url": "unix:///var/run/docker.sock"})
    assert direct.connection_mode is dockerhost.ConnectionMode.DIRECT


def test_find_condition() -> None:
    """Conditions are looked up by type."""
    status = dockercontainer.DockerContainerStatus.model_validate(
        {
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Running", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ]
        }
    )
    ready = conditions.find_condition(status.conditions, dockercontainer.ContainerConditionType.READY)
    assert ready is not None
    assert ready.status is common.ConditionStatus.TRUE
    assert conditions.find_condition(status.conditions, "Healthy") is None
