"""The DockerService CRD on the real kube-apiserver: defaults, CEL rules, readable refusals, and the models
agreeing with the server on every case."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pydantic
import pytest
from dockyard_e2e import Kubectl

from dockyard_operator.api import dockerservice

pytestmark = pytest.mark.kube


def dsvc(namespace: str, name: str | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"matchLabels": {"app": "web"}}, "ports": [{"port": 80}]}
    body.update(spec)
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerService",
        "metadata": {"name": name or f"s-{uuid.uuid4().hex[:8]}", "namespace": namespace},
        "spec": body,
    }


def test_defaults_are_a_services_and_the_models_read_them(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl.create(dsvc(namespace))
    assert result.returncode == 0, result.stderr
    spec = json.loads(result.stdout)["spec"]
    assert spec["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert (spec["sessionAffinity"], spec["service"]["type"]) == ("None", "ClusterIP")
    parsed = dockerservice.DockerServiceSpec.model_validate(spec)
    assert parsed.ports[0].target() == 80, "targetPort defaults to port"
    assert parsed.affinity_timeout() is None


def test_client_ip_affinity_defaults_to_three_hours(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl.create(dsvc(namespace, sessionAffinity="ClientIP"))
    assert result.returncode == 0, result.stderr
    parsed = dockerservice.DockerServiceSpec.model_validate(json.loads(result.stdout)["spec"])
    assert parsed.affinity_timeout() == 10800


TWO = [{"name": "http", "port": 80}, {"name": "https", "port": 443, "targetPort": "https"}]

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("UDP", {"ports": [{"port": 53, "protocol": "UDP"}]}, "only TCP for now"),
    ("no ports", {"ports": []}, "spec.ports"),
    ("two ports, one unnamed", {"ports": [{"name": "a", "port": 80}, {"port": 81}]}, "every port needs a name"),
    ("two ports, one name", {"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}, "names must be unique"),
    ("a port twice", {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}, "Duplicate value"),
    ("targetPort 0", {"ports": [{"port": 80, "targetPort": 0}]}, "targetPort must be a port number"),
    ("targetPort digits in quotes", {"ports": [{"port": 80, "targetPort": "8080"}]}, "targetPort must be a port"),
    ("targetPort with capitals", {"ports": [{"port": 80, "targetPort": "Web"}]}, "targetPort must be a port"),
    ("port 70000", {"ports": [{"port": 70000}]}, "spec.ports[0].port"),
    ("ExternalName", {"service": {"type": "ExternalName"}}, 'supported values: "ClusterIP", "NodePort"'),
    ("no selector", {"selector": None}, "spec.selector"),
    (
        "affinity timeout of two days",
        {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 172800}}},
        "timeoutSeconds",
    ),
]


@pytest.mark.parametrize(("what", "fields", "message"), INVALID, ids=[case[0] for case in INVALID])
def test_invalid_service_is_refused_by_server_and_models(
    kubectl: Kubectl, namespace: str, what: str, fields: dict[str, Any], message: str
) -> None:
    obj = dsvc(namespace, **copy.deepcopy(fields))
    if obj["spec"].get("selector") is None:
        del obj["spec"]["selector"]
    result = kubectl.create(obj)
    assert result.returncode != 0, f"{what}: accepted by the API server"
    assert message in result.stderr, result.stderr
    with pytest.raises(pydantic.ValidationError):
        dockerservice.DockerServiceSpec.model_validate(obj["spec"])


def test_two_named_ports_with_a_named_target_are_accepted(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl.create(dsvc(namespace, ports=TWO))
    assert result.returncode == 0, result.stderr
    dockerservice.DockerServiceSpec.model_validate(json.loads(result.stdout)["spec"])


@pytest.mark.parametrize("name", ["1st", "Web", "a" * 64, "web.example"])
def test_a_name_that_cannot_name_a_service_is_refused(kubectl: Kubectl, namespace: str, name: str) -> None:
    result = kubectl.create(dsvc(namespace, name=name))
    assert result.returncode != 0, f"{name!r} accepted"
    assert "metadata.name" in result.stderr, result.stderr


def dc_with_imports(namespace: str, imports: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerContainer",
        "metadata": {"name": f"c-{uuid.uuid4().hex[:8]}", "namespace": namespace},
        "spec": {"image": "busybox", "hostRef": {"name": "edge-1"}, "serviceImports": imports},
    }


@pytest.mark.parametrize(
    ("imports", "message"),
    [
        ([{"service": "a", "port": 80}, {"service": "b", "port": 80}], "each import needs a port of its own"),
        ([{"service": "Web", "port": 80}], "spec.serviceImports[0].service"),
        ([{"service": "web", "port": 80, "alias": "has space"}], "spec.serviceImports[0].alias"),
        ([{"service": "web", "port": 0}], "spec.serviceImports[0].port"),
    ],
)
def test_bad_service_imports_are_refused(
    kubectl: Kubectl, namespace: str, imports: list[dict[str, Any]], message: str
) -> None:
    result = kubectl.create(dc_with_imports(namespace, imports))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_service_imports_are_accepted_with_their_defaults_empty(kubectl: Kubectl, namespace: str) -> None:
    result = kubectl.create(dc_with_imports(namespace, [{"service": "pg", "namespace": "db", "port": 5432}]))
    assert result.returncode == 0, result.stderr
    (imported,) = json.loads(result.stdout)["spec"]["serviceImports"]
    assert imported == {"service": "pg", "namespace": "db", "port": 5432}
