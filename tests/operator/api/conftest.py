"""Fixtures of the API tests that talk to the real kube-apiserver: a pinned kubectl with the CRDs applied, and a
namespace no operator serves (objects there are validated by the API server, never reconciled)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dockyard_e2e import CLASS_LABEL, INERT_CLASS, SESSION, SESSION_LABEL, Kubectl, session_labels

from dockyard_operator.api import crds

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def kubectl(devenv: Any) -> Kubectl:
    """kubectl with the CRDs applied (from manifests/crds, through its kustomization) and Established."""
    k = Kubectl(binary=devenv.kubectl, env=devenv.env)
    k.run("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "manifests" / "crds"))
    for info in crds.KINDS:
        k.run("wait", "--for=condition=Established", "--timeout=60s", f"crd/{info.plural}.dockyard.dev")
    return k


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace of a class no operator serves: these objects are only validated, never reconciled."""
    name = f"crd-test-{uuid.uuid4().hex[:8]}"
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": session_labels(**{CLASS_LABEL: INERT_CLASS})},
    }
    kubectl.run("create", "-f", "-", stdin=json.dumps(manifest))
    yield name
    kubectl.run("delete", "namespace", name, "--timeout=120s")
    kubectl.run("delete", "dockerhosts", "-l", f"{SESSION_LABEL}={SESSION}", "--timeout=60s")
