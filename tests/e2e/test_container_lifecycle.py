"""A DockerContainer's life on a directly reached host: create, drift, behind-the-back changes, delete."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiodocker
import pytest
from dockyard_e2e import (
    SLEEPER,
    apply,
    condition,
    container_manifest,
    events_for,
    eventually,
    get_dc,
    host_manifest,
    kubectl,
)

from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.errors import NotFoundError

pytestmark = [pytest.mark.kube, pytest.mark.docker]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def _ready(kube: KubeClient, namespace: str, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    return await eventually(check, timeout=60, what=f"{name} Ready=True")


async def _containers(docker: aiodocker.Docker, uid: str) -> list[dict[str, Any]]:
    found = await docker.containers.list(all=True, filters={"label": [f"dockyard.dev/uid={uid}"]})
    return [dict(c._container) for c in found]


async def test_create_runs_with_limits_and_labels_then_delete_removes_it(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, local_host: str
) -> None:
    name = _name("web")
    apply(devenv, container_manifest(
        name, namespace, local_host, image=devenv.test_image, args=SLEEPER,
        resources={"limits": {"cpu": "500m", "memory": "64Mi"}}, env=[{"name": "GREETING", "value": "hi"}],
    ))  # fmt: skip
    obj = await _ready(kube, namespace, name)
    status = obj["status"]
    assert status["phase"] == "Running"
    assert status["host"] == local_host
    assert status["state"] == "running"
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    uid = obj["metadata"]["uid"]
    [found] = await _containers(docker, uid)
    info = await docker.containers.get(found["Id"])
    assert info["HostConfig"]["NanoCpus"] == 500_000_000
    assert info["HostConfig"]["Memory"] == 64 * 1024 * 1024
    labels = info["Config"]["Labels"]
    assert labels["dockyard.dev/namespace"] == namespace
    assert labels["dockyard.dev/name"] == name
    assert "GREETING=hi" in info["Config"]["Env"]
    assert status["containerID"] == found["Id"]
    assert status["ip"] == info["NetworkSettings"]["IPAddress"]
    reasons = [e["reason"] for e in await events_for(kube, namespace, name)]
    assert {"Scheduled", "Created", "Started"} <= set(reasons)

    # `kubectl wait` works against the Ready condition, and `kubectl get` shows our columns.
    kubectl(devenv, "wait", "--for=condition=Ready", f"dockercontainer/{name}", "-n", namespace, "--timeout=30s")
    table = kubectl(devenv, "get", "dockercontainers", "-n", namespace, name).stdout
    assert table.split()[:7] == ["NAME", "HOST", "IMAGE", "STATUS", "READY", "RESTARTS", "AGE"]
    assert local_host in table
    assert " Running " in table
    wide = kubectl(devenv, "get", "dockercontainers", "-n", namespace, name, "-o", "wide").stdout
    assert "STATE" in wide
    assert " running " in wide

    kubectl(devenv, "delete", "dockercontainer", name, "-n", namespace, "--wait=true", "--timeout=60s")
    assert await _containers(docker, uid) == []
    with pytest.raises(NotFoundError):
        await get_dc(kube, namespace, name)


async def test_changed_env_recreates_and_names_the_drift(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, local_host: str
) -> None:
    name = _name("drift")
    manifest = container_manifest(name, namespace, local_host, image=devenv.test_image, args=SLEEPER,
                                  env=[{"name": "MODE", "value": "one"}])  # fmt: skip
    apply(devenv, manifest)
    first = (await _ready(kube, namespace, name))["status"]["containerID"]
    manifest["spec"]["env"] = [{"name": "MODE", "value": "two"}]
    apply(devenv, manifest)

    async def recreated() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        cid = (obj.get("status") or {}).get("containerID")
        ok = cid and cid != first and condition(obj, "Ready").get("status") == "True"
        return obj if ok else None

    obj = await eventually(recreated, timeout=60, what="recreation after an env change")
    info = await docker.containers.get(obj["status"]["containerID"])
    assert "MODE=two" in info["Config"]["Env"]
    notes = [e.get("note", "") for e in await events_for(kube, namespace, name) if e["reason"] == "Recreated"]
    assert any("env" in n for n in notes), notes
    # The replaced container is kept, stopped and renamed, for `dockyard logs --previous` (one at most).
    states = sorted((c["Names"][0], c["State"]) for c in await _containers(docker, obj["metadata"]["uid"]))
    assert states == [(f"/{namespace}_{name}", "running"), (f"/{namespace}_{name}_previous", "exited")]


async def test_report_policy_marks_drift_and_leaves_the_container_alone(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, local_host: str
) -> None:
    name = _name("report")
    manifest = container_manifest(name, namespace, local_host, image=devenv.test_image, args=SLEEPER,
                                  driftPolicy="Report")  # fmt: skip
    apply(devenv, manifest)
    first = (await _ready(kube, namespace, name))["status"]["containerID"]
    manifest["spec"]["args"] = ["sh", "-c", "sleep 3600"]
    apply(devenv, manifest)

    async def drifted() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "Drifted").get("status") == "True" else None

    obj = await eventually(drifted, timeout=30, what="Drifted=True")
    assert obj["status"]["containerID"] == first
    assert "args" in obj["status"]["drift"]["fields"]
    assert [c["Id"] for c in await _containers(docker, obj["metadata"]["uid"])] == [first]


async def test_container_removed_behind_our_back_is_recreated(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, local_host: str
) -> None:
    name = _name("rmf")
    apply(devenv, container_manifest(name, namespace, local_host, image=devenv.test_image, args=SLEEPER))
    first = (await _ready(kube, namespace, name))["status"]["containerID"]
    await docker.containers.container(first).delete(force=True)

    async def back() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        cid = (obj.get("status") or {}).get("containerID")
        return obj if cid and cid != first and obj["status"]["state"] == "running" else None

    obj = await eventually(back, timeout=30, what="recreation after docker rm -f")
    assert obj["status"]["restartCount"] >= 1


async def test_never_restart_policy_leaves_a_stopped_container_exited(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, local_host: str
) -> None:
    name = _name("never")
    apply(devenv, container_manifest(name, namespace, local_host, image=devenv.test_image,
                                     args=["sh", "-c", "sleep 3600"], restartPolicy="Never"))  # fmt: skip
    cid = (await _ready(kube, namespace, name))["status"]["containerID"]
    await docker.containers.container(cid).stop(t=1)

    async def exited() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if (obj.get("status") or {}).get("state") == "exited" else None

    obj = await eventually(exited, timeout=30, what="state exited")
    assert obj["status"]["phase"] == "Failed"  # killed by SIGKILL after the grace period: non-zero exit
    assert obj["status"]["lastExitCode"] != 0
    assert condition(obj, "Ready")["status"] == "False"
    info = await docker.containers.get(cid)
    assert info["State"]["Running"] is False


async def test_always_restart_policy_starts_a_stopped_container_again(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, local_host: str
) -> None:
    name = _name("always")
    apply(devenv, container_manifest(name, namespace, local_host, image=devenv.test_image, args=SLEEPER))
    cid = (await _ready(kube, namespace, name))["status"]["containerID"]
    await docker.containers.container(cid).stop(t=1)

    async def restarted() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        st = obj.get("status") or {}
        return obj if st.get("restartCount", 0) >= 1 and st.get("state") == "running" else None

    obj = await eventually(restarted, timeout=30, what="restart after docker stop")
    assert obj["status"]["containerID"] == cid  # started again, not recreated


async def test_invalid_specs_are_rejected_by_the_api_server(devenv: Any, crds: None, namespace: str) -> None:
    cases = {
        "bad quantity": {"image": "x", "hostRef": {"name": "h"}, "resources": {"limits": {"memory": "lots"}}},
        "empty image": {"image": "", "hostRef": {"name": "h"}},
        "unknown restartPolicy": {"image": "x", "hostRef": {"name": "h"}, "restartPolicy": "Sometimes"},
        "both hostRef and hostSelector": {"image": "x", "hostRef": {"name": "h"}, "hostSelector": {}},
    }
    for what, spec in cases.items():
        manifest = {"apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerContainer",
                    "metadata": {"name": "invalid", "namespace": namespace}, "spec": spec}  # fmt: skip
        res = kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest), check=False)
        assert res.returncode != 0, f"{what} was accepted"
        assert "is invalid" in res.stderr or "Invalid value" in res.stderr, (what, res.stderr)


async def test_a_name_taken_by_a_foreign_container_is_reported_never_adopted(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, local_host: str
) -> None:
    name = _name("taken")
    foreign = await docker.containers.create(
        {"Image": devenv.test_image, "Cmd": ["sleep", "3600"]}, name=f"{namespace}_{name}"
    )
    try:
        apply(devenv, container_manifest(name, namespace, local_host, image=devenv.test_image, args=SLEEPER))

        async def conflict() -> dict[str, Any] | None:
            obj = await get_dc(kube, namespace, name)
            return obj if condition(obj, "Ready").get("reason") == "NameConflict" else None

        obj = await eventually(conflict, timeout=30, what="Ready=False NameConflict")
        assert obj["status"]["phase"] == "Failed"
        assert "containerID" not in obj["status"]
        info = await docker.containers.get(foreign.id)
        assert "dockyard.dev/uid" not in (info["Config"]["Labels"] or {}), "a foreign container is never adopted"
        assert await _containers(docker, obj["metadata"]["uid"]) == []
    finally:
        kubectl(devenv, "delete", "dockercontainer", name, "-n", namespace, "--timeout=60s", check=False)
        await foreign.delete(force=True)


async def test_deletion_waits_for_a_lost_host_and_the_orphan_annotation_lets_it_go(
    devenv: Any, operator: Any, kube: KubeClient, namespace: str, crds: None
) -> None:
    host = f"gone-{uuid.uuid4().hex[:6]}"
    manifest = host_manifest(host, {"url": "unix:///nonexistent/dockyard-test/docker.sock"})
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))
    name = _name("stuck")
    try:
        apply(devenv, container_manifest(name, namespace, host, image=devenv.test_image, args=SLEEPER))

        async def unreachable() -> dict[str, Any] | None:
            obj = await get_dc(kube, namespace, name)
            ok = condition(obj, "HostReachable").get("status") == "False"
            return obj if ok and "dockyard.dev/container-cleanup" in obj["metadata"].get("finalizers", []) else None

        await eventually(unreachable, timeout=30, what="HostReachable=False with our finalizer")
        kubectl(devenv, "delete", "dockercontainer", name, "-n", namespace, "--wait=false")
        await asyncio.sleep(3)
        held = await get_dc(kube, namespace, name)  # still there: the container may still run on that host
        assert held["metadata"].get("deletionTimestamp")
        kubectl(devenv, "annotate", "dockercontainer", name, "-n", namespace, "dockyard.dev/orphan=true")

        async def gone() -> bool | None:
            try:
                await get_dc(kube, namespace, name)
            except NotFoundError:
                return True
            return None

        await eventually(gone, timeout=30, what="deletion once orphaning was allowed")
    finally:
        kubectl(devenv, "delete", "dockerhost", host, "--timeout=60s", check=False)
