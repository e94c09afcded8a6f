"""A Docker host behind the tunnel: `dockyard host join`, a real agent process, agent loss and return."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiodocker
import pytest
from dockyard_e2e import (
    ROOT,
    apply,
    condition,
    container_manifest,
    eventually,
    get_dc,
    get_host,
    host_manifest,
    kubectl,
)

from dockyard_operator.kube.client import KubeClient

pytestmark = [pytest.mark.kube, pytest.mark.docker]

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


class Agent:
    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log = argv, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def tunnel_host(devenv: Any, operator: Any, tmp_path: Path) -> Iterator[tuple[str, Agent]]:
    name = f"edge-{uuid.uuid4().hex[:6]}"
    manifest = host_manifest(name, {"tunnel": {}}, labels={"site": "edge"})
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))
    token_file = tmp_path / "agent.token"

    def join() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dockyard_operator", "host", "join", name, "--token-file", str(token_file),
             "--kubeconfig", str(devenv.kubeconfig), "--operator-namespace", operator.operator_namespace],
            capture_output=True, text=True, env=devenv.env, check=False, timeout=60,
        )  # fmt: skip

    deadline = time.monotonic() + 30
    res = join()
    while res.returncode != 0 and time.monotonic() < deadline:  # the token Secret appears within a reconcile
        time.sleep(0.2)
        res = join()
    assert res.returncode == 0, res.stderr
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    command = next(line for line in res.stdout.splitlines() if line.startswith("dockyard-agent "))
    assert token not in res.stdout, "the join command must never contain the token"
    argv = shlex.split(command)
    argv[argv.index("--token-file") + 1] = str(token_file)
    argv = [sys.executable, "-m", "dockyard_tunnel.agent", *argv[1:], "--docker-socket", devenv.docker_host]
    agent = Agent(argv, devenv.env, tmp_path / "agent.log")
    agent.start()
    try:
        yield name, agent
    finally:
        # Containers on this host are deleted while its agent runs (a dead host would hold their finalizers).
        if agent.proc is None or agent.proc.poll() is not None:
            agent.start()
        objs = json.loads(kubectl(devenv, "get", "dockercontainers", "-A", "-o", "json").stdout)["items"]
        for obj in objs:
            if (obj["spec"].get("hostRef") or {}).get("name") == name:
                meta = obj["metadata"]
                kubectl(devenv, "delete", "dockercontainer", meta["name"], "-n", meta["namespace"], "--timeout=60s")
        agent.stop()
        kubectl(devenv, "delete", "dockerhost", name, "--timeout=60s")


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
