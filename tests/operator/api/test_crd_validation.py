"""The generated CRDs on the real kube-apiserver: they install, default, validate, explain and print as designed.

Every valid and invalid object here is also fed to the pydantic models, so the API server (schema + CEL) and the
operator (models) are checked to agree on what is valid.
"""

from __future__ import annotations

import asyncio
import copy
import json
import ssl
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pydantic
import pytest
from dockyard_e2e import INERT_CLASS, Kubectl, session_labels
from kubernetes_asyncio import client as kube_client
from kubernetes_asyncio import config as kube_config

from dockyard_operator.api import dockercontainer, dockerhost

pytestmark = pytest.mark.kube

ROOT = Path(__file__).resolve().parents[3]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def container(namespace: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"image": "dockyard-test/busybox:1", "hostRef": {"name": "edge-1"}}
    body.update(spec)
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerContainer",
        "metadata": {"name": _unique("dc"), "namespace": namespace},
        "spec": {k: v for k, v in body.items() if v is not None},
    }


def host(**spec: Any) -> dict[str, Any]:
    """A DockerHost of a class no operator serves (validated by the API server, never connected to)."""
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerHost",
        "metadata": {"name": _unique("dh"), "labels": session_labels()},
        "spec": {"operatorClass": INERT_CLASS, **spec},
    }


FULL_SPEC: dict[str, Any] = {
    "image": "dockyard-test/busybox:1",
    "imagePullPolicy": "Never",
    "imagePullSecrets": [{"name": "regcred"}],
    "command": ["sh", "-c"],
    "args": ["httpd -f -p 8080"],
    "workingDir": "/tmp",
    "env": [
        {"name": "PLAIN", "value": "1"},
        {"name": "EMPTY"},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
        {"name": "FROM_CM", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "mode", "optional": True}}},
    ],
    "envFrom": [{"prefix": "DB_", "secretRef": {"name": "db"}}, {"configMapRef": {"name": "c"}}],
    "ports": [
        {"name": "http", "containerPort": 8080, "hostPort": 18080, "hostIP": "127.0.0.1"},
        {"containerPort": 53, "protocol": "UDP"},
    ],
    "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
    "volumes": [
        {"name": "data", "mountPath": "/data", "dockerVolume": {"name": "app-data"}},
        {"name": "etc", "mountPath": "/etc/app", "readOnly": True, "hostPath": {"path": "/srv/app"}},
        {
            "name": "creds",
            "mountPath": "/run/creds",
            "secret": {"secretName": "s", "items": [{"key": "password", "path": "db/password", "mode": 0o400}]},
        },
        {"name": "conf", "mountPath": "/conf", "configMap": {"name": "c", "defaultMode": 0o644}},
    ],
    "restartPolicy": "OnFailure",
    "healthCheck": {
        "exec": {"command": ["wget", "-q", "-O-", "http://127.0.0.1:8080/"]},
        "intervalSeconds": 5,
        "timeoutSeconds": 2,
        "restartOnUnhealthy": True,
    },
    "labels": {"team": "edge"},
    "hostRef": {"name": "edge-1"},
    "driftPolicy": "Report",
    "stopGracePeriodSeconds": 3,
}


def test_valid_container_is_accepted_with_defaults_that_the_models_read(kubectl: Kubectl, namespace: str) -> None:
    """A minimal DockerContainer gets the documented defaults from the API server; the model parses the result."""
    obj = container(namespace, ports=[{"containerPort": 80}], healthCheck={"shell": {"command": "true"}})
    result = kubectl.create(obj)
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)
    spec = stored["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["driftPolicy"] == "Enforce"
    assert spec["stopGracePeriodSeconds"] == 10
    assert spec["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert spec["healthCheck"] == {
        "shell": {"command": "true"},
        "intervalSeconds": 30,
        "timeoutSeconds": 30,
        "retries": 3,
        "startPeriodSeconds": 0,
        "restartOnUnhealthy": False,
    }
    assert "imagePullPolicy" not in spec  # decided by the operator from the tag (Kubernetes' rule)
    model = dockercontainer.DockerContainer.model_validate(stored)
    assert model.spec.effective_image_pull_policy is dockercontainer.PullPolicy.IF_NOT_PRESENT
    assert model.metadata.uid == stored["metadata"]["uid"]


def test_full_container_round_trips_through_server_and_models(kubectl: Kubectl, namespace: str) -> None:
    """Every spec field is accepted, and what the server stores equals what the models serialise back."""
    obj = container(namespace, **FULL_SPEC)
    result = kubectl.create(obj)
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)
    model = dockercontainer.DockerContainer.model_validate(stored)
    assert model.spec.resources is not None
    assert model.spec.resources.limits is not None
    assert model.spec.resources.limits.cpu == "500m"
    dumped = model.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    # The models spell out empty lists and maps; the server stores them as absent. Same meaning.
    assert _without_empties(dumped) == stored["spec"]


def _without_empties(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_empties(v) for k, v in value.items() if v not in ([], {})}
    if isinstance(value, list):
        return [_without_empties(v) for v in value]
    return value


def test_integer_quantities_are_accepted_like_kubernetes(kubectl: Kubectl, namespace: str) -> None:
    """`cpu: 2` and `memory: 134217728` written as YAML integers are quantities (int-or-string)."""
    result = kubectl.create(container(namespace, resources={"limits": {"cpu": 2, "memory": 134217728}}))
    assert result.returncode == 0, result.stderr
    model = dockercontainer.DockerContainer.model_validate(json.loads(result.stdout))
    assert model.spec.resources is not None
    assert model.spec.resources.limits is not None
    assert (model.spec.resources.limits.cpu, model.spec.resources.limits.memory) == ("2", "134217728")


TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


async def _patch_status_as_table(kubeconfig: Path, path: str, patch: dict[str, Any]) -> dict[str, Any]:
    """Merge-patch /status and get the result rendered by the API server as a Table, in one request.

    One request, because an operator running against the same API server (another session's e2e tests) may
    rewrite the status of any DockerContainer a moment later; the PATCH response shows exactly our write.
    """
    cfg = kube_client.Configuration()
    await kube_config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
    context = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
    assert cfg.cert_file, "expected the dev environment's kubeconfig to use a client certificate"
    context.load_cert_chain(cfg.cert_file, cfg.key_file)
    headers = {"Content-Type": "application/merge-patch+json", "Accept": TABLE}
    async with (
        aiohttp.ClientSession() as session,
        session.patch(f"{cfg.host}{path}/status", data=json.dumps(patch), headers=headers, ssl=context) as response,
    ):
        body: dict[str, Any] = await response.json()
        assert response.status == 200, body
        return body


async def test_status_subresource_ready_condition_and_printer_columns(
    kubectl: Kubectl, namespace: str, devenv: Any
) -> None:
    """Status is written only through /status; the printer columns and `kubectl wait --for=condition=Ready` read it."""
    obj = container(namespace)
    name = obj["metadata"]["name"]
    assert kubectl.create(obj).returncode == 0
    status = dockercontainer.DockerContainerStatus.model_validate(
        {
            "observedGeneration": 1,
            "phase": "Running",
            "reason": "Running",
            "host": "edge-1",
            "state": "running",
            "health": "healthy",
            "ip": "172.17.0.2",
            "restartCount": 2,
            "drift": {"fields": ["image", "env"], "since": "2026-01-01T00:00:00Z"},
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Running", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ],
        }
    )
    patch = {"status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
    path = f"/apis/dockyard.dev/v1alpha1/namespaces/{namespace}/dockercontainers/{name}"

    table = await _patch_status_as_table(devenv.kubeconfig, path, patch)
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns == [
        "Name", "Host", "Image", "Status", "Ready", "Restarts", "Age", "State", "Health", "IP", "Drift"
    ]  # fmt: skip
    wide = {c["name"] for c in table["columnDefinitions"] if c["priority"] == 1}
    assert wide == {"State", "Health", "IP", "Drift"}
    cells = table["rows"][0]["cells"]
    assert cells[:6] == [name, "edge-1", "dockyard-test/busybox:1", "Running", "True", 2]
    assert cells[7:10] == ["running", "healthy", "172.17.0.2"]
    assert "image" in str(cells[10])
    assert "env" in str(cells[10])
    header = kubectl.run("get", "-n", namespace, "dc", name, "-o", "wide").stdout.splitlines()[0].split()
    assert header == ["NAME", "HOST", "IMAGE", "STATUS", "READY", "RESTARTS", "AGE", "STATE", "HEALTH", "IP", "DRIFT"]

    # kubectl wait watches; start it first and re-assert Ready until it has seen it (a concurrent operator may
    # flip the condition back at once, but the watch still delivers our version).
    waiter = await asyncio.create_subprocess_exec(
        str(kubectl.binary),
        *["wait", "-n", namespace, "--for=condition=Ready", "--timeout=30s", f"dc/{name}"],
        env=kubectl.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    finished = asyncio.create_task(waiter.communicate())
    try:
        for _ in range(60):
            if finished.done():
                break
            await _patch_status_as_table(devenv.kubeconfig, path, patch)
            await asyncio.wait({finished}, timeout=0.5)
        out, err = await asyncio.wait_for(finished, timeout=35)
    finally:
        if waiter.returncode is None:
            waiter.kill()
            await waiter.wait()
    assert waiter.returncode == 0, err.decode()
    assert "condition met" in out.decode()

    # The main resource ignores status: a spec-level patch cannot forge it.
    kubectl.run("patch", "-n", namespace, "dc", name, "--type=merge", "-p", json.dumps({"status": {"host": "forged"}}))
    stored = json.loads(kubectl.run("get", "-n", namespace, "dc", name, "-o", "json").stdout)
    assert stored["status"].get("host") != "forged"


def test_valid_hosts_are_accepted_and_spec_defaults_to_tunnel(kubectl: Kubectl) -> None:
    """A DockerHost without a spec is a tunnel host of the default class; a direct tcp:// host may carry a TLS
    Secret. (The bare one is only a server-side dry run: as class dockyard, a running demo would take it.)"""
    bare = host()
    del bare["spec"]
    created = kubectl.run("create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(bare))
    model = dockerhost.DockerHost.model_validate(json.loads(created.stdout))
    assert model.spec.connection_mode is dockerhost.ConnectionMode.TUNNEL
    assert model.spec.operator_class == "dockyard"
    bare = host()
    created = kubectl.create(bare)
    assert created.returncode == 0, created.stderr
    direct = host(
        url="tcp://10.0.0.5:2376",
        tls={"secretRef": {"name": "edge-tls", "namespace": "dockyard-system"}},
        namespaceSelector={"matchExpressions": [{"key": "team", "operator": "In", "values": ["edge"]}]},
    )
    created = kubectl.create(direct)
    assert created.returncode == 0, created.stderr
    model = dockerhost.DockerHost.model_validate(json.loads(created.stdout))
    assert model.spec.connection_mode is dockerhost.ConnectionMode.DIRECT
    kubectl.run("delete", "dockerhost", bare["metadata"]["name"], direct["metadata"]["name"], "--wait=false")


def test_a_hosts_operator_class_is_immutable(kubectl: Kubectl) -> None:
    """Handing a host to another operator means deleting it (drained) and creating it again, never a live edit."""
    obj = host()
    assert kubectl.create(obj).returncode == 0
    try:
        patch = json.dumps({"spec": {"operatorClass": "someone-else"}})
        res = kubectl.run("patch", "dockerhost", obj["metadata"]["name"], "--type=merge", "-p", patch, check=False)
        assert res.returncode != 0
        assert "operatorClass is immutable" in res.stderr
    finally:
        kubectl.run("delete", "dockerhost", obj["metadata"]["name"], "--wait=false")


# (description, mutation applied to a valid DockerContainer spec, text the API server's message must contain)
INVALID_CONTAINERS: list[tuple[str, dict[str, Any], str]] = [
    ("bad quantity", {"resources": {"limits": {"cpu": "lots"}}}, "spec.resources.limits.cpu"),
    ("negative quantity", {"resources": {"limits": {"memory": "-1Gi"}}}, "spec.resources.limits.memory"),
    ("zero cpu", {"resources": {"limits": {"cpu": "0"}}}, "must be greater than zero"),
    ("zero memory as an integer", {"resources": {"limits": {"memory": 0}}}, "must be greater than zero"),
    ("empty image", {"image": ""}, "spec.image"),
    ("image with spaces", {"image": "busybox latest"}, "spec.image"),
    ("unknown restartPolicy", {"restartPolicy": "Sometimes"}, 'supported values: "Always", "OnFailure", "Never"'),
    (
        "both hostRef and hostSelector",
        {"hostSelector": {"matchLabels": {"zone": "a"}}},
        "exactly one of hostRef, hostSelector must be set",
    ),
    ("neither hostRef nor hostSelector", {"hostRef": None}, "exactly one of hostRef, hostSelector must be set"),
    (
        "env value and valueFrom",
        {"env": [{"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]},
        "at most one of value, valueFrom may be set",
    ),
    (
        "secretKeyRef and configMapKeyRef",
        {
            "env": [
                {
                    "name": "A",
                    "valueFrom": {
                        "secretKeyRef": {"name": "s", "key": "k"},
                        "configMapKeyRef": {"name": "c", "key": "k"},
                    },
                }
            ]
        },
        "exactly one of secretKeyRef, configMapKeyRef must be set",
    ),
    ("duplicate env name", {"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}, "Duplicate value"),
    (
        "duplicate port",
        {"ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP"}]},
        "Duplicate value",
    ),
    ("bad env name", {"env": [{"name": "1A", "value": "x"}]}, "spec.env[0].name"),
    ("port out of range", {"ports": [{"containerPort": 70000}]}, "spec.ports[0].containerPort"),
    ("hostIP not an IP", {"ports": [{"containerPort": 80, "hostPort": 80, "hostIP": "localhost"}]}, "hostIP must be"),
    ("hostIP without hostPort", {"ports": [{"containerPort": 80, "hostIP": "127.0.0.1"}]}, "hostIP requires hostPort"),
    (
        "volume with two sources",
        {"volumes": [{"name": "v", "mountPath": "/v", "hostPath": {"path": "/a"}, "dockerVolume": {"name": "b"}}]},
        "exactly one of hostPath, dockerVolume, secret, configMap must be set",
    ),
    (
        "two volumes on one mountPath",
        {
            "volumes": [
                {"name": "a", "mountPath": "/v", "hostPath": {"path": "/a"}},
                {"name": "b", "mountPath": "/v", "hostPath": {"path": "/b"}},
            ]
        },
        "each volume needs its own mountPath",
    ),
    (
        "secret item escaping the mount",
        {
            "volumes": [
                {"name": "s", "mountPath": "/s", "secret": {"secretName": "s", "items": [{"key": "k", "path": "../x"}]}}
            ]
        },
        "spec.volumes[0].secret.items[0].path",
    ),
    ("relative workingDir", {"workingDir": "tmp"}, "spec.workingDir"),
    (
        "healthCheck timeout above interval",
        {"healthCheck": {"shell": {"command": "true"}, "intervalSeconds": 5, "timeoutSeconds": 10}},
        "timeoutSeconds must not exceed intervalSeconds",
    ),
    (
        "healthCheck without a test",
        {"healthCheck": {"intervalSeconds": 5}},
        "exactly one of exec, shell must be set",
    ),
    ("reserved label", {"labels": {"dockyard.dev/uid": "x"}}, "reserved"),
    ("unknown driftPolicy", {"driftPolicy": "Ignore"}, "spec.driftPolicy"),
    ("negative grace period", {"stopGracePeriodSeconds": -1}, "spec.stopGracePeriodSeconds"),
]


@pytest.mark.parametrize(("what", "mutation", "message"), INVALID_CONTAINERS, ids=[c[0] for c in INVALID_CONTAINERS])
def test_invalid_container_is_rejected_by_server_and_models(
    kubectl: Kubectl, namespace: str, what: str, mutation: dict[str, Any], message: str
) -> None:
    """The API server refuses the object with a message naming the problem, and the models refuse it too."""
    obj = container(namespace, **copy.deepcopy(mutation))
    result = kubectl.create(obj)
    assert result.returncode != 0, f"{what}: accepted by the API server"
    assert "is invalid" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr
    with pytest.raises(pydantic.ValidationError):
        dockercontainer.DockerContainerSpec.model_validate(obj["spec"])


INVALID_HOSTS: list[tuple[str, dict[str, Any], str]] = [
    ("tunnel and url", {"tunnel": {}, "url": "unix:///run/docker.sock"}, "at most one of tunnel, url may be set"),
    ("url scheme", {"url": "http://10.0.0.5:2375"}, "spec.url"),
    (
        "tls with a unix url",
        {"url": "unix:///run/docker.sock", "tls": {"secretRef": {"name": "t", "namespace": "n"}}},
        "tls may only be set together with a tcp:// url",
    ),
    (
        "selector In without values",
        {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In"}]}},
        "values must be non-empty for In and NotIn",
    ),
]


@pytest.mark.parametrize(("what", "spec", "message"), INVALID_HOSTS, ids=[c[0] for c in INVALID_HOSTS])
def test_invalid_host_is_rejected_by_server_and_models(
    kubectl: Kubectl, what: str, spec: dict[str, Any], message: str
) -> None:
    """DockerHost cross-field rules hold at admission and in the models."""
    result = kubectl.create(host(**spec))
    assert result.returncode != 0, f"{what}: accepted by the API server"
    assert message in result.stderr, result.stderr
    with pytest.raises(pydantic.ValidationError):
        dockerhost.DockerHostSpec.model_validate(spec)


def test_kubectl_explain_teaches_the_api(kubectl: Kubectl) -> None:
    """`kubectl explain` prints the descriptions written as docstrings on the models."""
    image = kubectl.run("explain", "dockercontainer.spec.image").stdout
    assert "Image reference, as for docker pull" in image
    policy = kubectl.run("explain", "dockercontainer.spec.restartPolicy").stdout
    assert "Always, OnFailure or Never" in policy
    url = kubectl.run("explain", "dockerhost.spec.url").stdout
    assert "tcp://host:port" in url


def test_category_lists_both_kinds_and_short_names_work(kubectl: Kubectl, namespace: str) -> None:
    """`kubectl get dockyard` lists DockerContainers and DockerHosts; dc and dh are short names."""
    obj = container(namespace)
    assert kubectl.create(obj).returncode == 0
    h = host()
    assert kubectl.create(h).returncode == 0
    try:
        listing = kubectl.run("get", "dockyard", "-A", "-o", "name").stdout.split()
        assert f"dockercontainer.dockyard.dev/{obj['metadata']['name']}" in listing
        assert f"dockerhost.dockyard.dev/{h['metadata']['name']}" in listing
        assert obj["metadata"]["name"] in kubectl.run("get", "dc", "-n", namespace, "-o", "name").stdout
        assert h["metadata"]["name"] in kubectl.run("get", "dh", "-o", "name").stdout
    finally:
        kubectl.run("delete", "dockerhost", h["metadata"]["name"], "--wait=false")
