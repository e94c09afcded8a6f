"""Secrets and ConfigMaps into containers (and their rotation), healthchecks, scheduling by labels."""

from __future__ import annotations

import base64
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

pytestmark = [pytest.mark.kube, pytest.mark.docker]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def _exec(docker: aiodocker.Docker, cid: str, *cmd: str) -> str:
    container = docker.containers.container(cid)
    execution = await container.exec(list(cmd), stdout=True, stderr=True)
    out = b""
    async with execution.start(detach=False) as stream:
        while (msg := await stream.read_out()) is not None:
            out += msg.data
    return out.decode()


def _secret(devenv: Any, namespace: str, name: str, data: dict[str, str]) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))


async def test_secret_in_env_and_file_and_rotation_recreates(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, local_host: str
) -> None:
    name, secret = _name("sec"), _name("creds")
    _secret(devenv, namespace, secret, {"password": "first-value", "config.ini": "[a]\nb=1\n"})
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": secret, "namespace": namespace},
          "data": {"LEVEL": "debug"}}  # fmt: skip
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(cm))
    apply(devenv, container_manifest(
        name, namespace, local_host, image=devenv.test_image, args=SLEEPER,
        env=[{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}],
        envFrom=[{"configMapRef": {"name": secret}}],
        volumes=[{"name": "creds", "mountPath": "/etc/creds", "secret": {"secretName": secret, "defaultMode": 0o400}}],
    ))  # fmt: skip

    async def ready() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    first = (await eventually(ready, timeout=60, what="Ready"))["status"]["containerID"]
    assert (await _exec(docker, first, "sh", "-c", "echo $PASSWORD $LEVEL")).strip() == "first-value debug"
    assert await _exec(docker, first, "cat", "/etc/creds/config.ini") == "[a]\nb=1\n"
    assert (await _exec(docker, first, "stat", "-c", "%a", "/etc/creds/password")).strip() == "400"
    # The value is resolved into the container, never into the object's status or events.
    obj = await get_dc(kube, namespace, name)
    assert "first-value" not in json.dumps(obj["status"])
    assert all("first-value" not in json.dumps(e) for e in await events_for(kube, namespace, name))

    _secret(devenv, namespace, secret, {"password": "second-value", "config.ini": "[a]\nb=2\n"})

    async def rotated() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        cid = (obj.get("status") or {}).get("containerID")
        return obj if cid and cid != first and condition(obj, "Ready").get("status") == "True" else None

    obj = await eventually(rotated, timeout=60, what="recreation after Secret rotation")
    cid = obj["status"]["containerID"]
    assert (await _exec(docker, cid, "sh", "-c", "echo $PASSWORD")).strip() == "second-value"
    assert await _exec(docker, cid, "cat", "/etc/creds/config.ini") == "[a]\nb=2\n"


async def test_missing_secret_is_reported_then_picked_up_when_created(
    devenv: Any, operator: Any, kube: KubeClient, namespace: str, local_host: str
) -> None:
    name, secret = _name("late"), _name("later")
    apply(devenv, container_manifest(
        name, namespace, local_host, image=devenv.test_image, args=SLEEPER,
        env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": "token"}}}],
    ))  # fmt: skip

    async def blocked() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "Ready").get("reason") == "CreateContainerConfigError" else None

    obj = await eventually(blocked, timeout=30, what="CreateContainerConfigError")
    assert secret in condition(obj, "Ready")["message"]
    _secret(devenv, namespace, secret, {"token": "t"})

    async def ready() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    await eventually(ready, timeout=60, what="Ready once the Secret exists")


async def test_failing_healthcheck_reports_unhealthy_and_restarts_when_asked(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, local_host: str
) -> None:
    name = _name("sick")
    # Healthy while /tmp/ok exists; the test removes it to make the container sick.
    apply(devenv, container_manifest(
        name, namespace, local_host, image=devenv.test_image,
        args=["sh", "-c", "touch /tmp/ok; trap 'exit 0' TERM; while true; do sleep 1; done"],
        healthCheck={"shell": {"command": "test -f /tmp/ok"}, "intervalSeconds": 1, "timeoutSeconds": 1,
                     "retries": 2, "restartOnUnhealthy": True},
    ))  # fmt: skip

    async def healthy() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return (
            obj if condition(obj, "Healthy").get("status") == "True" and obj["status"]["health"] == "healthy" else None
        )

    cid = (await eventually(healthy, timeout=60, what="healthy"))["status"]["containerID"]
    assert condition(await get_dc(kube, namespace, name), "Ready")["status"] == "True"
    await _exec(docker, cid, "rm", "/tmp/ok")

    async def restarted() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if obj["status"].get("restartCount", 0) >= 1 else None

    obj = await eventually(restarted, timeout=60, what="a restart for unhealthiness")
    reasons = [e["reason"] for e in await events_for(kube, namespace, name)]
    assert "Unhealthy" in reasons
    assert "Restarted" in reasons
    # A restart (not a recreation) runs the command again, which recreates /tmp/ok: healthy again.
    await eventually(healthy, timeout=60, what="healthy again after the restart")
    assert obj["status"]["containerID"] == cid


async def test_host_selector_places_on_a_matching_reachable_host(
    devenv: Any, operator: Any, kube: KubeClient, namespace: str, local_host: str
) -> None:
    name = _name("sel")
    manifest = container_manifest(name, namespace, local_host, image=devenv.test_image, args=SLEEPER)
    del manifest["spec"]["hostRef"]
    manifest["spec"]["hostSelector"] = {"matchLabels": {"site": "lab"}}
    apply(devenv, manifest)

    async def placed() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    obj = await eventually(placed, timeout=60, what="scheduled and Ready")
    assert obj["status"]["host"] == local_host
    assert condition(obj, "Scheduled")["reason"] == "HostSelector"

    nowhere = _name("nowhere")
    manifest = container_manifest(nowhere, namespace, local_host, image=devenv.test_image, args=SLEEPER)
    del manifest["spec"]["hostRef"]
    manifest["spec"]["hostSelector"] = {"matchLabels": {"site": "mars"}}
    apply(devenv, manifest)

    async def unschedulable() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, nowhere)
        return obj if condition(obj, "Scheduled").get("status") == "False" else None

    obj = await eventually(unschedulable, timeout=30, what="Scheduled=False")
    assert obj["status"]["phase"] == "Pending"


async def test_host_paths_need_the_hosts_permission(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, tmp_path: Any
) -> None:
    host = _name("paths")
    manifest = host_manifest(host, {"url": devenv.docker_host})
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))
    (tmp_path / "hello.txt").write_text("from the host\n")
    name = _name("bind")
    apply(devenv, container_manifest(
        name, namespace, host, image=devenv.test_image, args=SLEEPER,
        volumes=[{"name": "data", "mountPath": "/data", "readOnly": True, "hostPath": {"path": str(tmp_path)}}],
    ))  # fmt: skip
    try:

        async def refused() -> dict[str, Any] | None:
            obj = await get_dc(kube, namespace, name)
            return obj if condition(obj, "Ready").get("reason") == "HostPathNotAllowed" else None

        obj = await eventually(refused, timeout=30, what="HostPathNotAllowed")
        assert obj["status"]["phase"] == "Failed"
        assert "containerID" not in obj["status"]

        manifest["spec"]["allowedHostPaths"] = [str(tmp_path.parent)]
        kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))

        async def ready() -> dict[str, Any] | None:
            obj = await get_dc(kube, namespace, name)
            return obj if condition(obj, "Ready").get("status") == "True" else None

        obj = await eventually(ready, timeout=60, what="Ready once the host allows the path")
        assert await _exec(docker, obj["status"]["containerID"], "cat", "/data/hello.txt") == "from the host\n"
    finally:
        kubectl(devenv, "delete", "dockercontainer", name, "-n", namespace, "--timeout=60s", check=False)
        kubectl(devenv, "delete", "dockerhost", host, "--timeout=60s", check=False)
