"""The install as people consume it: the base and every overlay render with kustomize and are accepted by the real
API server (server-side dry run: admission, schemas and defaulting, nothing persisted), in a namespace of the test
so a running demo's dockyard-system is never touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_the_monitoring_overlay_scrapes_the_operator(kubectl: Kubectl, namespace: str) -> None:
    """production-example-monitoring: everything but the ServiceMonitor is accepted by the API server (its CRD is
    not installed here: the test never adds CRDs to a shared API server); the ServiceMonitor selects the metrics
    Service, whose named port leads to the operator's metrics port."""
    docs = render(kubectl, "manifests/overlays/production-example-monitoring", namespace)
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    rest = [d for d in docs if d["kind"] != "ServiceMonitor"]
    result = kubectl.run(
        "apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-",
        stdin=yaml.safe_dump_all(rest), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (monitor,) = monitors
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    spec: Any = monitor["spec"]
    services: list[Any] = [d for d in rest if d["kind"] == "Service"]
    wanted = spec["selector"]["matchLabels"].items()
    selected = [s for s in services if wanted <= (s["metadata"].get("labels") or {}).items()]
    assert [s["metadata"]["name"] for s in selected] == ["dockyard-operator-metrics"]
    service: Any = selected[0]
    port = next(p for p in service["spec"]["ports"] if p["name"] == spec["endpoints"][0]["port"])
    deployment: Any = next(d for d in rest if d["kind"] == "Deployment")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    assert spec["endpoints"][0]["path"] == "/metrics"
    assert "namespaceSelector" not in spec  # its own namespace, the Service's
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]  # type: ignore[index]
