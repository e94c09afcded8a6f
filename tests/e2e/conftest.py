"""End-to-end fixtures: the real apiserver and dockerd (devenv), our CRDs, and the operator as a real process.

The operator runs as `python -m dockyard_operator operator` with its own log file, exactly as a user runs it;
tests talk to it only through the Kubernetes API and watch the Docker daemon directly (aiodocker) to check and
to act "behind the operator's back".
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from dockyard_e2e import OPERATOR_NAMESPACE, ROOT, OperatorProcess, kubectl

from dockyard_operator.kube.client import KubeClient


@pytest.fixture(scope="session")
def crds(devenv: Any) -> None:
    kubectl(devenv, "apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "manifests" / "crds"))
    kubectl(devenv, "wait", "--for=condition=Established", "--timeout=60s",
            "crd/dockercontainers.dockyard.dev", "crd/dockerhosts.dockyard.dev")  # fmt: skip


@pytest.fixture(scope="session")
def operator_namespace(devenv: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """This session's own operator namespace and RBAC (manifests/rbac, renamed by kustomize), so the Lease,
    agent tokens and tunnel CA never collide with a `make demo` operator or another test session."""
    suffix = uuid.uuid4().hex[:6]
    name = f"{OPERATOR_NAMESPACE}-{suffix}"
    kubectl(devenv, "create", "namespace", name)
    overlay = tmp_path_factory.mktemp("rbac-overlay")
    (overlay / "kustomization.yaml").write_text(
        json.dumps(
            {
                "resources": [os.path.relpath(ROOT / "manifests" / "rbac", overlay)],  # kustomize wants relative
                "namespace": name,
                "nameSuffix": f"-{suffix}",
            }
        )
    )
    rendered = kubectl(devenv, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(overlay)).stdout
    kubectl(devenv, "apply", "-f", "-", stdin=rendered)
    return name


@pytest.fixture(scope="session")
def operator_kubeconfig(
    devenv: Any, crds: None, operator_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Credentials of the operator's ServiceAccount, bound to manifests/rbac only: the e2e operator runs with
    exactly the permissions a real deployment gets, so a missing RBAC rule fails these tests."""
    account = f"dockyard-operator-{operator_namespace.rsplit('-', 1)[1]}"
    token = kubectl(devenv, "create", "token", account, "-n", operator_namespace, "--duration=4h").stdout.strip()
    admin = json.loads(devenv.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "dockyard-operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster["name"], "user": "dockyard-operator"}}],
        "current-context": "operator",
    }
    path = tmp_path_factory.mktemp("operator-sa") / "kubeconfig"
    path.touch(mode=0o600)
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="session")
def operator(
    devenv: Any,
    crds: None,
    namespace: str,
    operator_namespace: str,
    operator_kubeconfig: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(
        devenv, tmp_path_factory.mktemp("operator"), namespace, operator_kubeconfig, operator_namespace
    )
    proc.start()
    try:
        yield proc
    finally:
        # Delete what this session created while the operator still runs: its finalizer removes the Docker
        # containers (an end-to-end check of deletion at scale), and nothing is left on the daemon.
        try:
            kubectl(devenv, "delete", "dockercontainers", "--all", "-n", namespace, "--wait=true", "--timeout=180s")
        finally:
            code = proc.stop()  # always: a leftover operator would fight the next session's over DockerHosts
        assert code == 0, f"operator did not stop cleanly on SIGTERM (exit {code}):\n{proc.tail()}"


@pytest.fixture
async def kube(devenv: Any) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(kubeconfig=str(devenv.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture(scope="session")
def namespace(devenv: Any, crds: None) -> str:
    """One namespace per test session (namespaces cannot be deleted without a controller-manager)."""
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    kubectl(devenv, "create", "namespace", name)
    kubectl(devenv, "label", "namespace", name, "dockyard.dev/e2e=true")
    return name


@pytest.fixture(scope="session")
def local_host(devenv: Any, crds: None) -> str:
    """A DockerHost reached directly on the private dockerd's socket."""
    name = "local-direct"
    manifest = {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerHost",
        "metadata": {"name": name, "labels": {"site": "lab", "reach": "direct"}},
        "spec": {"url": devenv.docker_host},
    }
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))
    return name


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On failure, attach the operator's recent log lines: the first thing anyone debugging needs."""
    report = yield
    if report.failed and "operator" in getattr(item, "fixturenames", ()):
        proc = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
        if isinstance(proc, OperatorProcess):
            report.sections.append(("operator log (last 80 lines)", proc.tail(80)))
    return report
