"""The dev environment runs kube-controller-manager: ownerReferences, cascading deletion and namespace deletion
behave as in a real cluster (DockerDeployment and DockerJob rely on the garbage collector)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dockyard_e2e import kubectl

pytestmark = pytest.mark.kube


def _wait(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _get(devenv: Any, namespace: str, name: str) -> dict[str, Any] | None:
    res = kubectl(devenv, "get", "configmap", name, "-n", namespace, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def _owner_and_children(devenv: Any, namespace: str, *, block: bool = False, hold: bool = False) -> list[str]:
    """A ConfigMap owning two others through ownerReferences; returns [owner, child, child]."""
    owner = f"owner-{uuid.uuid4().hex[:6]}"
    kubectl(devenv, "create", "configmap", owner, "-n", namespace)
    uid = json.loads(kubectl(devenv, "get", "configmap", owner, "-n", namespace, "-o", "json").stdout)["metadata"][
        "uid"
    ]
    children = []
    for index in range(2):
        child = f"{owner}-child-{index}"
        meta: dict[str, Any] = {
            "name": child,
            "namespace": namespace,
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid, "blockOwnerDeletion": block}
            ],
        }
        if hold:
            meta["finalizers"] = ["dockyard.dev/test-hold"]
        kubectl(
            devenv, "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta})
        )
        children.append(child)
    return [owner, *children]


@pytest.fixture
def scratch(devenv: Any) -> Iterator[str]:
    name = f"kcm-{uuid.uuid4().hex[:6]}"
    kubectl(devenv, "create", "namespace", name)
    try:
        yield name
    finally:
        kubectl(devenv, "delete", "namespace", name, "--wait=false", check=False)


def test_garbage_collector_deletes_children_of_a_deleted_owner(devenv: Any, scratch: str) -> None:
    owner, *children = _owner_and_children(devenv, scratch)
    kubectl(devenv, "delete", "configmap", owner, "-n", scratch)  # background cascade, the default
    _wait(lambda: all(_get(devenv, scratch, c) is None for c in children), timeout=30, what="children collected")


def test_foreground_cascade_keeps_the_owner_until_its_children_are_gone(devenv: Any, scratch: str) -> None:
    owner, *children = _owner_and_children(devenv, scratch, block=True, hold=True)
    kubectl(devenv, "delete", "configmap", owner, "-n", scratch, "--cascade=foreground", "--wait=false")

    def children_deleting() -> bool:
        found = [_get(devenv, scratch, c) for c in children]
        return all(c is not None and c["metadata"].get("deletionTimestamp") for c in found)

    _wait(children_deleting, timeout=30, what="children marked for deletion")
    held = _get(devenv, scratch, owner)
    assert held is not None, "foreground: the owner stays while a blocking child remains"
    assert "foregroundDeletion" in held["metadata"].get("finalizers", [])
    for child in children:
        kubectl(
            devenv, "patch", "configmap", child, "-n", scratch, "--type=merge", "-p", '{"metadata":{"finalizers":[]}}'
        )
    _wait(lambda: _get(devenv, scratch, owner) is None, timeout=30, what="owner gone after its children")


def test_orphan_cascade_leaves_children_without_the_owner_reference(devenv: Any, scratch: str) -> None:
    owner, *children = _owner_and_children(devenv, scratch)
    kubectl(devenv, "delete", "configmap", owner, "-n", scratch, "--cascade=orphan")

    def orphaned() -> bool:
        found = [_get(devenv, scratch, c) for c in children]
        return all(c is not None and not c["metadata"].get("ownerReferences") for c in found)

    _wait(orphaned, timeout=30, what="children released")
    time.sleep(1)
    assert all(_get(devenv, scratch, c) is not None for c in children), "orphaned children must survive"


def test_a_deleted_namespace_goes_away_with_its_contents(devenv: Any) -> None:
    name = f"kcm-ns-{uuid.uuid4().hex[:6]}"
    kubectl(devenv, "create", "namespace", name)
    kubectl(devenv, "create", "configmap", "inside", "-n", name)
    _wait(lambda: _get(devenv, name, "kube-root-ca.crt") is not None, timeout=30, what="kube-root-ca.crt published")
    kubectl(devenv, "delete", "namespace", name, "--timeout=60s")
    assert kubectl(devenv, "get", "namespace", name, check=False).returncode != 0


def test_service_accounts_get_tokens_and_selectorless_services_mirror_endpoints(devenv: Any, scratch: str) -> None:
    """The ServiceAccount controllers and the EndpointSlice mirroring controller run (DockerService needs them)."""
    _wait(
        lambda: kubectl(devenv, "get", "serviceaccount", "default", "-n", scratch, check=False).returncode == 0,
        timeout=30,
        what="the default ServiceAccount",
    )
    manifest = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "plain", "namespace": scratch},
             "spec": {"ports": [{"port": 80}]}},
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "plain", "namespace": scratch},
             "subsets": [{"addresses": [{"ip": "10.213.0.9"}], "ports": [{"port": 80}]}]},
        ],
    }  # fmt: skip
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))

    def mirrored() -> bool:
        res = kubectl(devenv, "get", "endpointslices", "-n", scratch, "-l", "kubernetes.io/service-name=plain",
                      "-o", "json")  # fmt: skip
        return any(e["addresses"] == ["10.213.0.9"] for s in json.loads(res.stdout)["items"] for e in s["endpoints"])

    _wait(mirrored, timeout=30, what="an EndpointSlice mirrored from the Endpoints")


def test_the_session_end_check_sees_leftovers_and_ignores_other_sessions(devenv: Any) -> None:
    """tests/conftest.py fails the run on leftovers; this proves the check can see one (and is not fooled)."""
    from dockyard_e2e import SESSION_LABEL, inventory, leftovers

    before = inventory(devenv)
    mine = f"leftover-{uuid.uuid4().hex[:6]}"
    theirs = f"other-{uuid.uuid4().hex[:6]}"
    kubectl(devenv, "create", "namespace", mine)
    kubectl(devenv, "create", "namespace", theirs)
    kubectl(devenv, "label", "namespace", theirs, f"{SESSION_LABEL}=someone-else")
    try:
        problems = leftovers(devenv, before)
        assert f"Namespace/{mine} was left behind" in problems
        assert not any(theirs in p for p in problems), problems
    finally:
        kubectl(devenv, "delete", "namespace", mine, theirs, "--timeout=60s")
    assert not any(mine in p for p in leftovers(devenv, before))
