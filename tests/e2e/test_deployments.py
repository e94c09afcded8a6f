"""DockerDeployment end to end: the real API server and kube-controller-manager (garbage collector), the real
dockerd, and two real agents registered as two DockerHosts (one daemon behind both; each host's containers stay
apart by the dockyard.dev/host label)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiodocker
import pytest
from dockyard_e2e import (
    SESSION,
    Agent,
    condition,
    eventually,
    get_host,
    join_tunnel_host,
    kubectl,
    leave_tunnel_host,
    wait_connected,
)

from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import DOCKERCONTAINERS, DOCKERDEPLOYMENTS

pytestmark = [pytest.mark.kube, pytest.mark.docker]

SERVER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
FLEET = {"fleet": SESSION}


class Fleet:
    def __init__(self, hosts: dict[str, Agent]) -> None:
        self.agents = hosts
        self.names = sorted(hosts)


@pytest.fixture(scope="module")
def fleet(devenv: Any, operator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    workdir = tmp_path_factory.mktemp("fleet")
    names = [f"fleet-a-{SESSION}", f"fleet-b-{SESSION}"]
    agents = {name: join_tunnel_host(devenv, operator, name, FLEET, workdir) for name in names}
    try:
        wait_connected(devenv, names)
        yield Fleet(agents)
    finally:
        for name, agent in agents.items():
            leave_tunnel_host(devenv, name, agent)


def deployment(name: str, namespace: str, *, replicas: int = 4, env: str = "1", **spec: Any) -> dict[str, Any]:
    template_spec: dict[str, Any] = {
        "image": "dockyard-test/busybox:1",
        "imagePullPolicy": "Never",
        "args": SERVER,
        "env": [{"name": "VERSION", "value": env}],
        "hostSelector": {"matchLabels": FLEET},
        "stopGracePeriodSeconds": 2,
    }
    template_spec.update(spec.pop("template_spec", {}))
    return {
        "apiVersion": "dockyard.dev/v1alpha1",
        "kind": "DockerDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": template_spec},
            **spec,
        },
    }


def apply(devenv: Any, manifest: dict[str, Any]) -> None:
    kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(manifest))


async def replicas_of(kube: KubeClient, namespace: str, name: str) -> list[dict[str, Any]]:
    listed = await kube.list(DOCKERCONTAINERS, namespace=namespace, label_selector=f"app={name}")
    return [o for o in listed["items"] if not o["metadata"].get("deletionTimestamp")]


def is_ready(obj: dict[str, Any]) -> bool:
    return condition(obj, "Ready").get("status") == "True"


async def settled(
    kube: KubeClient, namespace: str, name: str, replicas: int, *, timeout: float = 120
) -> dict[str, Any]:
    """Wait until the DockerDeployment reports `replicas` available and up to date, and exactly that many exist."""

    async def check() -> dict[str, Any] | None:
        obj = await kube.get(DOCKERDEPLOYMENTS, name, namespace=namespace)
        status = obj.get("status") or {}
        owned = await replicas_of(kube, namespace, name)
        done = (
            status.get("availableReplicas") == replicas
            and status.get("updatedReplicas") == replicas
            and status.get("replicas") == replicas
            and len(owned) == replicas
            and status.get("observedGeneration") == obj["metadata"]["generation"]
        )
        return obj if done else None

    return await eventually(check, timeout=timeout, what=f"{name}: {replicas} replicas available and up to date")


def rollout(devenv: Any, verb: str, name: str, namespace: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard_operator", "rollout", verb, f"ddeploy/{name}", "-n", namespace,
         "--kubeconfig", str(devenv.kubeconfig), *extra],
        capture_output=True, text=True, env=devenv.env, check=False, timeout=300,
    )  # fmt: skip


async def test_replicas_spread_over_the_hosts_and_kubectl_scale_works(
    devenv: Any, operator: Any, kube: KubeClient, namespace: str, fleet: Fleet
) -> None:
    name = f"spread-{uuid.uuid4().hex[:4]}"
    apply(devenv, deployment(name, namespace, replicas=4))
    await settled(kube, namespace, name, 4)
    owned = await replicas_of(kube, namespace, name)
    assert Counter(o["status"]["host"] for o in owned) == {fleet.names[0]: 2, fleet.names[1]: 2}
    for obj in owned:
        assert obj["metadata"]["labels"]["dockyard.dev/template-hash"]
        ref = next(r for r in obj["metadata"]["ownerReferences"] if r.get("controller"))
        assert (ref["kind"], ref["name"], ref["blockOwnerDeletion"]) == ("DockerDeployment", name, True)

    kubectl(devenv, "scale", f"ddeploy/{name}", "-n", namespace, "--replicas=6")
    await settled(kube, namespace, name, 6)
    assert Counter(o["status"]["host"] for o in await replicas_of(kube, namespace, name)) == {
        fleet.names[0]: 3,
        fleet.names[1]: 3,
    }
    kubectl(devenv, "scale", f"ddeploy/{name}", "-n", namespace, "--replicas=2")
    obj = await settled(kube, namespace, name, 2)
    assert sorted(o["status"]["host"] for o in await replicas_of(kube, namespace, name)) == fleet.names
    assert obj["status"]["selector"] == f"app={name}"
    kubectl(devenv, "wait", "--for=condition=Available", f"ddeploy/{name}", "-n", namespace, "--timeout=30s")
    table = kubectl(devenv, "get", "ddeploy", name, "-n", namespace).stdout.split()
    assert table[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[6:9] == ["2/2", "2", "2"]
    path = f"/apis/dockyard.dev/v1alpha1/namespaces/{namespace}/dockerdeployments/{name}/scale"
    scale = json.loads(kubectl(devenv, "get", "--raw", path).stdout)
    assert (scale["spec"]["replicas"], scale["status"]["selector"]) == (2, f"app={name}")
    kubectl(devenv, "delete", "ddeploy", name, "-n", namespace, "--timeout=60s")


async def test_a_rolling_update_keeps_availability_a_broken_one_stalls_and_undo_returns(
    devenv: Any, operator: Any, kube: KubeClient, namespace: str, fleet: Fleet
) -> None:
    name = f"roll-{uuid.uuid4().hex[:4]}"
    healthy = {"shell": {"command": "true"}, "intervalSeconds": 1, "timeoutSeconds": 1, "retries": 1}
    manifest = deployment(name, namespace, replicas=4, progressDeadlineSeconds=20,
                          template_spec={"healthCheck": healthy})  # fmt: skip
    apply(devenv, manifest)
    await settled(kube, namespace, name, 4)

    # A good change: sample every 100 ms that availability never drops below 4 - 1 and the total stays <= 4 + 1.
    manifest["spec"]["template"]["spec"]["env"][0]["value"] = "2"
    apply(devenv, manifest)
    samples: list[tuple[int, int]] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        owned = await replicas_of(kube, namespace, name)
        samples.append((sum(is_ready(o) for o in owned), len(owned)))
        obj = await kube.get(DOCKERDEPLOYMENTS, name, namespace=namespace)
        status = obj.get("status") or {}
        if (status.get("updatedReplicas"), status.get("availableReplicas"), status.get("replicas")) == (4, 4, 4) and (
            status.get("observedGeneration") == obj["metadata"]["generation"] and len(owned) == 4
        ):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the rollout did not finish: {samples[-5:]}")
    assert min(ready for ready, _ in samples) >= 3, f"availability dropped below 3: {samples}"
    assert max(total for _, total in samples) <= 5, f"more than 5 replicas at once: {samples}"
    assert rollout(devenv, "status", name, namespace, "--timeout", "30").returncode == 0

    # A broken change: the new replicas never pass their health check. The rollout stops where it is, the old
    # replicas keep serving, and after progressDeadlineSeconds it says so.
    manifest["spec"]["template"]["spec"]["env"][0]["value"] = "3"
    manifest["spec"]["template"]["spec"]["healthCheck"] = {**healthy, "shell": {"command": "false"}}
    apply(devenv, manifest)

    async def stuck() -> dict[str, Any] | None:
        obj = await kube.get(DOCKERDEPLOYMENTS, name, namespace=namespace)
        owned = await replicas_of(kube, namespace, name)
        assert sum(is_ready(o) for o in owned) >= 3, "the old replicas must keep serving"
        return obj if condition(obj, "Progressing").get("reason") == "ProgressDeadlineExceeded" else None

    obj = await eventually(stuck, timeout=90, what="ProgressDeadlineExceeded")
    assert condition(obj, "Available")["status"] == "True"
    failed = rollout(devenv, "status", name, namespace, "--timeout", "30")
    assert failed.returncode == 1
    assert "exceeded its progress deadline" in failed.stderr

    history = rollout(devenv, "history", name, namespace)
    assert history.returncode == 0
    assert [line.split()[0] for line in history.stdout.splitlines()[2:]] == ["1", "2", "3"]
    undo = rollout(devenv, "undo", name, namespace)
    assert undo.returncode == 0, undo.stderr
    await settled(kube, namespace, name, 4, timeout=120)
    owned = await replicas_of(kube, namespace, name)
    for obj in owned:
        env = {e["name"]: e.get("value") for e in obj["spec"]["env"]}
        assert env["VERSION"] == "2", "back on the previous template"
    deployed = await kube.get(DOCKERDEPLOYMENTS, name, namespace=namespace)
    assert deployed["metadata"]["annotations"]["dockyard.dev/revision"] == "4", "a rollback is a new revision"
    assert rollout(devenv, "status", name, namespace, "--timeout", "60").returncode == 0
    kubectl(devenv, "delete", "ddeploy", name, "-n", namespace, "--timeout=60s")


async def test_replicas_of_a_host_lost_longer_than_the_tolerance_come_back_on_the_other(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, fleet: Fleet
) -> None:
    name = f"failover-{uuid.uuid4().hex[:4]}"
    apply(devenv, deployment(name, namespace, replicas=2, hostFailureToleranceSeconds=5))
    await settled(kube, namespace, name, 2)
    lost_host, kept_host = fleet.names[1], fleet.names[0]
    owned = await replicas_of(kube, namespace, name)
    lost = next(o for o in owned if o["status"]["host"] == lost_host)
    fleet.agents[lost_host].kill()
    try:

        async def replaced() -> list[dict[str, Any]] | None:
            live = [o for o in await replicas_of(kube, namespace, name)
                    if "dockyard.dev/evicted" not in (o["metadata"].get("annotations") or {})]  # fmt: skip
            hosts = [o.get("status", {}).get("host") for o in live if is_ready(o)]
            return live if hosts == [kept_host, kept_host] else None

        await eventually(replaced, timeout=90, what="both replicas Ready on the remaining host")
        # During the partition the old copy may still run on its host (like a Pod on an unreachable node).
        evicted = (await kube.get(DOCKERCONTAINERS, lost["metadata"]["name"], namespace=namespace))["metadata"]
        assert "dockyard.dev/evicted" in (evicted.get("annotations") or {})
    finally:
        fleet.agents[lost_host].start()

    async def host_back() -> dict[str, Any] | None:
        obj = await get_host(kube, lost_host)
        return obj if (obj.get("status") or {}).get("phase") == "Connected" else None

    await eventually(host_back, timeout=60, what="the lost host connected again")
    uid_filter = {"label": [f"dockyard.dev/uid={lost['metadata']['uid']}"]}

    async def old_copy_removed() -> bool | None:
        return True if await docker.containers.list(all=True, filters=uid_filter) == [] else None

    await eventually(old_copy_removed, timeout=60, what="the old copy removed once its host was back")
    kubectl(devenv, "delete", "ddeploy", name, "-n", namespace, "--timeout=60s")


async def test_an_operator_killed_mid_rollout_finishes_it_with_no_extra_or_missing_replica(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, fleet: Fleet
) -> None:
    name = f"crash-{uuid.uuid4().hex[:4]}"
    manifest = deployment(name, namespace, replicas=4)
    apply(devenv, manifest)
    await settled(kube, namespace, name, 4)
    manifest["spec"]["template"]["spec"]["env"][0]["value"] = "2"
    apply(devenv, manifest)
    await asyncio.sleep(1.0)  # in the middle of it
    operator.kill()
    operator.start()  # a new replica: it waits for the dead leader's Lease to expire, then takes over
    obj = await settled(kube, namespace, name, 4, timeout=180)
    owned = await replicas_of(kube, namespace, name)
    hashes = {o["metadata"]["labels"]["dockyard.dev/template-hash"] for o in owned}
    assert len(owned) == 4
    assert len(hashes) == 1
    assert obj["status"]["updateRevision"].endswith(hashes.pop())
    uids = {o["metadata"]["uid"] for o in owned}

    async def only_these_containers() -> bool | None:
        found = await docker.containers.list(all=True, filters={"label": [f"dockyard.dev/namespace={namespace}"]})
        mine = {c._container["Labels"]["dockyard.dev/uid"] for c in found
                if c._container["Labels"].get("dockyard.dev/name", "").startswith(f"{name}-")}  # fmt: skip
        return True if mine == uids else None

    await eventually(only_these_containers, timeout=60, what="exactly one Docker container per replica")
    kubectl(devenv, "delete", "ddeploy", name, "-n", namespace, "--timeout=60s")


async def test_deletion_cascades_and_orphan_leaves_the_replicas_running(
    devenv: Any, operator: Any, kube: KubeClient, docker: aiodocker.Docker, namespace: str, fleet: Fleet
) -> None:
    name = f"cascade-{uuid.uuid4().hex[:4]}"
    apply(devenv, deployment(name, namespace, replicas=2))
    await settled(kube, namespace, name, 2)
    owned = await replicas_of(kube, namespace, name)
    kubectl(devenv, "delete", "ddeploy", name, "-n", namespace, "--cascade=orphan", "--timeout=60s")

    async def released() -> list[dict[str, Any]] | None:
        objs = await replicas_of(kube, namespace, name)
        return objs if len(objs) == 2 and all(not o["metadata"].get("ownerReferences") for o in objs) else None

    await eventually(released, timeout=60, what="replicas released by the garbage collector")
    for obj in owned:
        info = await docker.containers.get(obj["status"]["containerID"])
        assert info["State"]["Running"], "orphaned replicas keep running"

    # A new DockerDeployment with the same selector adopts them (the same template: nothing is replaced), and
    # deleting it takes them along (the default cascade) and their Docker containers (their finalizers).
    apply(devenv, deployment(name, namespace, replicas=2))
    adopter = await settled(kube, namespace, name, 2)
    adopted = await replicas_of(kube, namespace, name)
    assert {o["metadata"]["uid"] for o in adopted} == {o["metadata"]["uid"] for o in owned}
    for obj in adopted:
        ref = next(r for r in obj["metadata"]["ownerReferences"] if r.get("controller"))
        assert ref["uid"] == adopter["metadata"]["uid"]
    kubectl(devenv, "delete", "ddeploy", name, "-n", namespace, "--timeout=60s")

    async def gone() -> bool | None:
        objs = (await kube.list(DOCKERCONTAINERS, namespace=namespace, label_selector=f"app={name}"))["items"]
        containers = await docker.containers.list(all=True, filters={"label": [f"dockyard.dev/namespace={namespace}"]})
        ours = [c for c in containers if c._container["Labels"].get("dockyard.dev/name", "").startswith(f"{name}-")]
        return True if not objs and not ours else None

    await eventually(gone, timeout=90, what="replicas and their Docker containers gone with the deployment")
