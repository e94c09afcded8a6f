"""Deleting a DockerHost: the host is drained first, and nothing waits for a host that is gone.

Reachable: each DockerContainer on it removes its Docker container there and leaves (a hostRef one becomes
Unschedulable, a hostSelector one moves). Unreachable: they are released at once, with a Warning naming what may
remain. Either way the host's deletion finishes in seconds, and so does the deletion of its containers and of
their namespace (before: every container's deletion waited the full 600 s host timeout).
"""

from __future__ import annotations

import json
import time
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


async def test_deleting_a_reachable_host_removes_its_containers_first(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str
) -> None:
    host = f"drain-{uuid.uuid4().hex[:6]}"
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(host_manifest(host, {"url": devenv.docker_host})))
    name = f"on-{host}"
    apply(devenv, container_manifest(name, namespace, host, image=devenv.test_image, args=SLEEPER))

    async def ready() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    obj = await eventually(ready, timeout=60, what="Ready on the host to be deleted")
    uid = {"label": [f"dockyard.dev/uid={obj['metadata']['uid']}"]}
    assert len(await docker.containers.list(all=True, filters=uid)) == 1
    started = time.monotonic()
    kubectl(devenv, "delete", "dockerhost", host, "--timeout=60s")
    took = time.monotonic() - started
    assert await docker.containers.list(all=True, filters=uid) == [], "drained: its container was removed first"

    async def unschedulable() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if (obj.get("status") or {}).get("reason") == "Unschedulable" else None

    obj = await eventually(unschedulable, timeout=30, what="Unschedulable once its host is gone")
    assert "host" not in obj["status"]
    kubectl(devenv, "delete", "dockercontainer", name, "-n", namespace, "--timeout=30s")
    print(f"host drained and deleted in {took:.1f}s")


async def test_deleting_an_unreachable_host_releases_its_containers_at_once(
    devenv: Any, operator: Any, kube: KubeClient, namespace: str
) -> None:
    host = f"lost-{uuid.uuid4().hex[:6]}"
    spec = {"url": "unix:///nonexistent/dockyard-test/docker.sock"}
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(host_manifest(host, spec)))
    name = f"on-{host}"
    apply(devenv, container_manifest(name, namespace, host, image=devenv.test_image, args=SLEEPER))

    async def unreachable() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "HostReachable").get("status") == "False" else None

    await eventually(unreachable, timeout=60, what="HostReachable=False")
    kubectl(devenv, "delete", "dockerhost", host, "--timeout=60s")
    started = time.monotonic()
    kubectl(devenv, "delete", "dockercontainer", name, "-n", namespace, "--timeout=60s")
    assert time.monotonic() - started < 60, "never the 600 s wait for a host that is gone"
    notes = [e.get("note", "") for e in await events_for(kube, namespace, name) if e.get("type") == "Warning"]
    assert any("may remain" in note for note in notes), notes
