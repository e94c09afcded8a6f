"""The install as people consume it: the base and every overlay render with kustomize and are accepted by the real
API server (server-side dry run: admission, schemas and defaulting, nothing persisted), in a namespace of the test
so a running demo's dockyard-system is never touched."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dockyard_e2e import Kubectl

pytestmark = pytest.mark.kube

ROOT = Path(__file__).resolve().parents[3]
TARGETS = [
    "manifests/base",
    "manifests/overlays/kind",
    "manifests/overlays/dev",
    "manifests/overlays/production-example",
]


def render(kubectl: Kubectl, target: str, namespace: str) -> list[dict[str, object]]:
    out = kubectl.run("kustomize", str(ROOT / target)).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] == "Namespace":
            meta["name"] = namespace
        elif meta.get("namespace") == "dockyard-system":
            meta["namespace"] = namespace
        for subject in doc.get("subjects") or []:
            if subject.get("namespace") == "dockyard-system":
                subject["namespace"] = namespace
    return docs


@pytest.mark.parametrize("target", TARGETS)
def test_every_overlay_is_accepted_by_the_api_server(kubectl: Kubectl, namespace: str, target: str) -> None:
    docs = render(kubectl, target, namespace)
    kinds = {d["kind"] for d in docs}
    assert {"CustomResourceDefinition", "ClusterRole", "Deployment", "Service", "ServiceAccount"} <= kinds
    result = kubectl.run(
        "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-",
        stdin=yaml.safe_dump_all(docs), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout


def test_the_overlays_say_what_they_promise(kubectl: Kubectl, namespace: str) -> None:
    def by_kind(target: str) -> dict[str, dict[str, object]]:
        return {f"{d['kind']}/{d['metadata']['name']}": d for d in render(kubectl, target, namespace)}  # type: ignore[index]

    kind = by_kind("manifests/overlays/kind")
    tunnel = kind["Service/dockyard-tunnel"]["spec"]
    assert tunnel["type"] == "NodePort"  # type: ignore[index]
    assert tunnel["ports"][0]["nodePort"] == 30443  # type: ignore[index]
    container = kind["Deployment/dockyard-operator"]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DOCKYARD_TUNNEL_PUBLIC_URL"] == "wss://localhost:30443"
    assert "POD_IP" in env, "the DockerService data plane listens on the Pod's IP"
    assert container["imagePullPolicy"] == "Never"
    prod = by_kind("manifests/overlays/production-example")
    assert prod["Deployment/dockyard-operator"]["spec"]["replicas"] == 2  # type: ignore[index]
    assert "PodDisruptionBudget/dockyard-operator" in prod
    assert prod["Service/dockyard-tunnel"]["spec"]["type"] == "LoadBalancer"  # type: ignore[index]
    ports = [p for rule in prod["NetworkPolicy/dockyard-operator"]["spec"]["ingress"] for p in rule["ports"]]  # type: ignore[index]
    assert {p["port"] for p in ports} == {8443, 8080, 8444, 32768}
    base = by_kind("manifests/base")
    security = base["Deployment/dockyard-operator"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]  # type: ignore[index]
    assert security["readOnlyRootFilesystem"] is True
