"""End-to-end fixtures: the real apiserver and dockerd (devenv), our CRDs, and the operator as a real process.

The operator runs as `python -m dockyard_operator operator` with its own log file, exactly as a user runs it;
tests talk to it only through the Kubernetes API and watch the Docker daemon directly (aiodocker) to check and
to act "behind the operator's back".

The session's operator has its own operator class (E2E_CLASS): it serves only the session's DockerHosts and the
namespaces labelled with that class, so a running demo and the session never see each other's objects. At the
end, everything the session made is deleted while its operator still runs (finalizers need it), then the
operator stops; tests/conftest.py checks that nothing is left.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from dockyard_e2e import (
    E2E_CLASS,
    OPERATOR_NAMESPACE,
    ROOT,
    SESSION,
    SESSION_LABEL,
    OperatorProcess,
    create_namespace,
    host_manifest,
    kubectl,
    session_labels,
)

from dockyard_operator.api import crds as crd_kinds
from dockyard_operator.kube.client import KubeClient

SELECTOR = f"{SESSION_LABEL}={SESSION}"


@pytest.fixture(scope="session")
def crds(devenv: Any) -> None:
    kubectl(devenv, "apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "manifests" / "crds"))
    names = [f"crd/{info.plural}.dockyard.dev" for info in crd_kinds.KINDS]
    kubectl(devenv, "wait", "--for=condition=Established", "--timeout=60s", *names)


@pytest.fixture(scope="session")
def operator_namespace(devenv: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This session's own operator namespace and RBAC (manifests/rbac, renamed by kustomize), so the Lease,
    agent tokens and tunnel CA never collide with a `make demo` operator or another test session."""
    name = f"{OPERATOR_NAMESPACE}-{SESSION}"
    create_namespace(devenv, name, operator_class="none")
    overlay = tmp_path_factory.mktemp("rbac-overlay")
    (overlay / "kustomization.yaml").write_text(
        json.dumps(
            {
                "resources": [os.path.relpath(ROOT / "manifests" / "rbac", overlay)],  # kustomize wants relative
                "namespace": name,
                "nameSuffix": f"-{SESSION}",
                "labels": [{"pairs": session_labels(), "includeSelectors": False}],
            }
        )
    )
    rendered = kubectl(devenv, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(overlay)).stdout
    kubectl(devenv, "apply", "-f", "-", stdin=rendered)
    try:
        yield name
    finally:
        kubectl(devenv, "delete", "-f", "-", "--ignore-not-found", "--wait=false", stdin=rendered, check=False)
        kubectl(devenv, "delete", "namespace", name, "--ignore-not-found", "--timeout=120s", check=False)


@pytest.fixture(scope="session")
def operator_kubeconfig(
    devenv: Any, crds: None, operator_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Credentials of the operator's ServiceAccount, bound to manifests/rbac only: the e2e operator runs with
    exactly the permissions a real deployment gets, so a missing RBAC rule fails these tests."""
    account = f"dockyard-operator-{SESSION}"
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


def clean_up_session(devenv: Any) -> None:
    """Delete what the session made, while its operator still runs: DockerContainers (their finalizers remove the
    Docker containers), DockerHosts (drained), then the namespaces."""
    namespaces = kubectl(devenv, "get", "namespaces", "-l", SELECTOR, "-o", "name").stdout.split()
    for ns in namespaces:
        # Owners first (their controllers would replace deleted children), then what is left of the children.
        for kind in ("dockerservices", "dockercronjobs", "dockerjobs", "dockerdeployments", "dockercontainers"):
            kubectl(devenv, "delete", kind, "--all", "-n", ns.split("/", 1)[1], "--timeout=180s", check=False)
    kubectl(devenv, "delete", "dockerhosts", "-l", SELECTOR, "--timeout=120s", check=False)
    for ns in namespaces:
        if not ns.endswith(f"/{OPERATOR_NAMESPACE}-{SESSION}"):  # the operator's own goes after it stops
            kubectl(devenv, "delete", ns, "--timeout=120s", check=False)


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
        # Deleting what this session created while the operator still runs is also an end-to-end check of
        # deletion at scale: nothing may be left on the daemon or in the API server.
        try:
            clean_up_session(devenv)
        finally:
            code = proc.stop()  # always: a leftover operator would keep acting on the session's hosts
        assert code == 0, f"operator did not stop cleanly on SIGTERM (exit {code}):\n{proc.tail()}"


@pytest.fixture
async def kube(devenv: Any) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(kubeconfig=str(devenv.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture(scope="session")
def namespace(devenv: Any, crds: None) -> Iterator[str]:
    """The session's namespace, served by the session's operator class."""
    name = create_namespace(devenv, f"e2e-{SESSION}")
    kubectl(devenv, "label", "namespace", name, "dockyard.dev/e2e=true")
    try:
        yield name
    finally:
        kubectl(devenv, "delete", "namespace", name, "--ignore-not-found", "--timeout=120s", check=False)


@pytest.fixture(scope="session")
def operator_class() -> str:
    return E2E_CLASS


@pytest.fixture(scope="session")
def local_host(devenv: Any, crds: None) -> Iterator[str]:
    """A DockerHost of the session's class, reached directly on the private dockerd's socket."""
    name = f"local-{SESSION}"
    manifest = host_manifest(name, {"url": devenv.docker_host}, labels={"site": "lab", "reach": "direct"})
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))
    try:
        yield name
    finally:
        kubectl(devenv, "delete", "dockerhost", name, "--ignore-not-found", "--wait=false", check=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On failure, attach the operator's recent log lines: the first thing anyone debugging needs."""
    report = yield
    if report.failed and "operator" in getattr(item, "fixturenames", ()):
        proc = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
        if isinstance(proc, OperatorProcess):
            report.sections.append(("operator log (last 80 lines)", proc.tail(80)))
    return report
