"""A Docker host behind the tunnel: `dockyard host join`, a real agent process, agent loss and return."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiodocker
import pytest
from dockyard_e2e import (
    SLEEPER,
    Agent,
    apply,
    condition,
    container_manifest,
    eventually,
    get_dc,
    get_host,
    join_tunnel_host,
    kubectl,
    leave_tunnel_host,
)

from dockyard_operator.kube.client import KubeClient

pytestmark = [pytest.mark.kube, pytest.mark.docker]


@pytest.fixture
def tunnel_host(devenv: Any, operator: Any, tmp_path: Path) -> Iterator[tuple[str, Agent]]:
    name = f"edge-{uuid.uuid4().hex[:6]}"
    agent = join_tunnel_host(devenv, operator, name, {"site": "edge"}, tmp_path)
    try:
        yield name, agent
    finally:
        leave_tunnel_host(devenv, name, agent)


async def test_container_on_a_tunnel_host_survives_agent_loss_and_is_adopted_on_return(
    devenv: Any,
    operator: Any,
    kube: KubeClient,
    docker: aiodocker.Docker,
    namespace: str,
    tunnel_host: tuple[str, Agent],
) -> None:
    host, agent = tunnel_host

    async def connected() -> dict[str, Any] | None:
        obj = await get_host(kube, host)
        return obj if (obj.get("status") or {}).get("phase") == "Connected" else None

    obj = await eventually(connected, timeout=30, what="DockerHost Connected")
    status = obj["status"]
    assert status["dockerVersion"].startswith("20.10")
    assert status["agentVersion"]
    assert condition(obj, "Ready")["status"] == "True"

    name = f"tun-{uuid.uuid4().hex[:6]}"
    apply(devenv, container_manifest(name, namespace, host, image=devenv.test_image, args=SLEEPER))

    async def ready() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    cid = (await eventually(ready, timeout=60, what="Ready through the tunnel"))["status"]["containerID"]

    agent.kill()

    async def unreachable() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "HostReachable").get("status") == "False" else None

    obj = await eventually(unreachable, timeout=15, what="HostReachable=False after the agent died")
    assert condition(obj, "Ready")["status"] == "Unknown"
    assert obj["status"]["phase"] == "Unknown"

    async def host_disconnected() -> dict[str, Any] | None:  # its own queue: may trail the container's status
        obj = await get_host(kube, host)
        return obj if obj["status"]["phase"] == "Disconnected" else None

    await eventually(host_disconnected, timeout=15, what="DockerHost Disconnected")
    # Nothing was done to the container on stale knowledge: it still runs, untouched.
    info = await docker.containers.get(cid)
    assert info["State"]["Running"] is True

    agent.start()
    obj = await eventually(ready, timeout=30, what="Ready again after the agent returned")
    assert obj["status"]["containerID"] == cid, "the container must be adopted, not recreated"
    assert condition(obj, "HostReachable")["status"] == "True"
    uid_filter = {"label": [f"dockyard.dev/uid={obj['metadata']['uid']}"]}
    assert [c.id for c in await docker.containers.list(all=True, filters=uid_filter)] == [cid]

    # Deletion goes through the tunnel too: the container is stopped and removed before the object goes.
    kubectl(devenv, "delete", "dockercontainer", name, "-n", namespace, "--wait=true", "--timeout=60s")
    assert await docker.containers.list(all=True, filters=uid_filter) == []
