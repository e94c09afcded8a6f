"""The DockerDeployment CRD on the real kube-apiserver: defaults, CEL rules, immutability, scale subresource.

As for the other kinds, every object is also fed to the models: what the API server admits the operator must be
able to read, and what it refuses the models refuse too (an admitted object the operator cannot parse would be
stuck forever).
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pydantic
import pytest
from dockyard_e2e import Kubectl

from dockyard_operator.api import dockerdeployment

pytestmark = pytest.mark.kube


def deployment(namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web", "tier": "front"}},
            "spec": {"image": "dockyard-test/busybox:1", "hostSelector": {"matchLabels": {"zone": "a"}}},
        },
    }
    body.update(spec)
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerDeployment",
        "metadata": {"name": f"dd-{uuid.uuid4().hex[:8]}", "namespace": namespace},
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def _template(**container: Any) -> dict[str, Any]:
    spec = {"image": "dockyard-test/busybox:1", "hostRef": {"name": "edge-1"}, **container}
    return {"metadata": {"labels": {"app": "web"}}, "spec": spec}


def test_defaults_are_apps_v1_deployments_and_the_models_read_them(kubectl: Kubectl, namespace: str) -> None:
    """replicas 1, RollingUpdate 25%/25%, revisionHistoryLimit 10, progressDeadlineSeconds 600, as a Deployment."""
    result = kubectl.create(deployment(namespace))
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)["spec"]
    assert (spec["replicas"], spec["minReadySeconds"], spec["revisionHistoryLimit"]) == (1, 0, 10)
    assert (spec["progressDeadlineSeconds"], spec["paused"], spec["hostFailureToleranceSeconds"]) == (600, False, 300)
    assert spec["strategy"] == {"type": "RollingUpdate"}
    assert spec["spread"] == {"maxSkew": 1}
    model = dockerdeployment.DockerDeploymentSpec.model_validate(spec)
    rolling = model.strategy.effective_rolling_update
    assert (rolling.max_surge, rolling.max_unavailable) == ("25%", "25%")


@pytest.mark.parametrize(
    ("surge", "unavailable"), [(1, 0), ("200%", "0%"), (0, "100%"), ("0", 2)], ids=["1-0", "200%", "100%", "strings"]
)
def test_int_or_percent_accepts_what_kubernetes_accepts(
    kubectl: Kubectl, namespace: str, surge: int | str, unavailable: int | str
) -> None:
    """Integers or percentages; a surge may go beyond 100%, unavailability may not (as in Kubernetes)."""
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    result = kubectl.create(deployment(namespace, strategy=strategy))
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)["spec"]
    model = dockerdeployment.DockerDeploymentSpec.model_validate(spec)
    assert (
        model.strategy.effective_rolling_update.max_surge,
        model.strategy.effective_rolling_update.max_unavailable,
    ) == (
        str(surge),
        str(unavailable),
    )


# (description, spec fields replaced in a valid DockerDeployment, text the API server's message must contain)
INVALID_DEPLOYMENTS: list[tuple[str, dict[str, Any], str]] = [
    (
        "selector not matching the template",
        {"selector": {"matchLabels": {"app": "api"}}},
        "selector does not match the template's labels",
    ),
    (
        "selector expression not matching",
        {"selector": {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}},
        "selector does not match the template's labels",
    ),
    ("empty selector", {"selector": {}}, "selector must not be empty"),
    ("no selector", {"selector": None}, "spec.selector: Required value"),
    ("negative replicas", {"replicas": -1}, "spec.replicas"),
    (
        "maxSurge and maxUnavailable both zero",
        {"strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}},
        "maxSurge and maxUnavailable may not both be zero",
    ),
    (
        "maxUnavailable above 100%",
        {"strategy": {"rollingUpdate": {"maxUnavailable": "150%"}}},
        "spec.strategy.rollingUpdate.maxUnavailable",
    ),
    ("maxSurge not a number", {"strategy": {"rollingUpdate": {"maxSurge": "one"}}}, "spec.strategy.rollingUpdate"),
    (
        "rollingUpdate with Recreate",
        {"strategy": {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}},
        "rollingUpdate may only be set when type is RollingUpdate",
    ),
    ("unknown strategy", {"strategy": {"type": "BlueGreen"}}, 'supported values: "RollingUpdate", "Recreate"'),
    (
        "template restartPolicy OnFailure",
        {"template": _template(restartPolicy="OnFailure")},
        "template.spec.restartPolicy must be Always",
    ),
    (
        "template container invalid",
        {"template": _template(hostSelector={"matchLabels": {"zone": "a"}})},
        "exactly one of hostRef, hostSelector must be set",
    ),
    (
        "progress deadline not above minReadySeconds",
        {"minReadySeconds": 60, "progressDeadlineSeconds": 60},
        "progressDeadlineSeconds must be greater than minReadySeconds",
    ),
    ("maxSkew zero", {"spread": {"maxSkew": 0}}, "spec.spread.maxSkew"),
]


@pytest.mark.parametrize(
    ("what", "fields", "message"), INVALID_DEPLOYMENTS, ids=[case[0] for case in INVALID_DEPLOYMENTS]
)
def test_invalid_deployment_is_rejected_by_server_and_models(
    kubectl: Kubectl, namespace: str, what: str, fields: dict[str, Any], message: str
) -> None:
    """The API server refuses the object with a message naming the problem, and the models refuse it too."""
    obj = deployment(namespace, **copy.deepcopy(fields))
    result = kubectl.create(obj)
    assert result.returncode != 0, f"{what}: accepted by the API server"
    assert "is invalid" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
    with pytest.raises(pydantic.ValidationError):
        dockerdeployment.DockerDeploymentSpec.model_validate(obj["spec"])


def test_selector_is_immutable_and_the_scale_subresource_sets_replicas(kubectl: Kubectl, namespace: str) -> None:
    """Changing the selector would orphan the replicas, so it is refused; `kubectl scale` reaches spec.replicas."""
    obj = deployment(namespace)
    assert kubectl.create(obj).returncode == 0
    name = obj["metadata"]["name"]
    patch = json.dumps({"spec": {"selector": {"matchLabels": {"app": "web", "tier": "front"}}}})
    refused = kubectl.run("patch", "ddeploy", name, "-n", namespace, "--type=merge", "-p", patch, check=False)
    assert refused.returncode != 0
    assert "selector is immutable" in refused.stderr
    kubectl.run("scale", f"ddeploy/{name}", "-n", namespace, "--replicas=7")
    replicas = kubectl.run("get", "ddeploy", name, "-n", namespace, "-o", "jsonpath={.spec.replicas}").stdout
    assert replicas == "7"
    too_many = kubectl.run("scale", f"ddeploy/{name}", "-n", namespace, "--replicas=20000", check=False)
    assert too_many.returncode != 0
    assert "spec.replicas" in too_many.stderr


def test_category_short_name_and_explain(kubectl: Kubectl, namespace: str) -> None:
    """`kubectl get dockyard` includes DockerDeployments; ddeploy is the short name; explain shows the docs."""
    obj = deployment(namespace)
    assert kubectl.create(obj).returncode == 0
    listing = kubectl.run("get", "dockyard", "-n", namespace, "-o", "name").stdout.split()
    assert f"dockerdeployment.dockyard.dev/{obj['metadata']['name']}" in listing
    assert obj["metadata"]["name"] in kubectl.run("get", "ddeploy", "-n", namespace, "-o", "name").stdout
    explained = kubectl.run("explain", "dockerdeployment.spec.hostFailureToleranceSeconds").stdout
    assert "unreachable" in explained
