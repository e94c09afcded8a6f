"""Four broken DockerContainers read at a glance, in the words `kubectl get pods` users know.

An image that cannot be pulled, a host that does not exist, a command that does not exist, a missing Secret:
STATUS says ImagePullBackOff (after ErrImagePull), Unschedulable, CrashLoopBackOff (after RunContainerError),
CreateContainerConfigError; phase is always set; a failing start counts restarts; each distinct failure is one
Warning Event whose count grows, not one Event per retry.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from dockyard_e2e import apply, condition, container_manifest, events_for, eventually, get_dc, kubectl

from dockyard_operator.kube.client import KubeClient

pytestmark = [pytest.mark.kube, pytest.mark.docker]


async def test_four_broken_containers_say_what_is_wrong(
    devenv: Any, operator: Any, kube: KubeClient, namespace: str, local_host: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    names = {
        "pull": f"pull-{tag}",
        "host": f"host-{tag}",
        "command": f"command-{tag}",
        "secret": f"secret-{tag}",
    }
    # A registry that refuses at once (nothing listens on port 1): the pull fails fast and for the same reason.
    apply(devenv, container_manifest(names["pull"], namespace, local_host, image="127.0.0.1:1/nope:1",
                                     imagePullPolicy="IfNotPresent"))  # fmt: skip
    apply(devenv, container_manifest(names["host"], namespace, "no-such-host", image=devenv.test_image))
    apply(devenv, container_manifest(names["command"], namespace, local_host, image=devenv.test_image,
                                     command=["/no/such/command"]))  # fmt: skip
    missing = {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": f"absent-{tag}", "key": "token"}}}
    apply(devenv, container_manifest(names["secret"], namespace, local_host, image=devenv.test_image, env=[missing]))
    expected = {
        "pull": "ImagePullBackOff",
        "host": "Unschedulable",
        "command": "CrashLoopBackOff",
        "secret": "CreateContainerConfigError",
    }

    async def all_reported() -> dict[str, dict[str, Any]] | None:
        objs = {k: await get_dc(kube, namespace, n) for k, n in names.items()}
        reasons = {k: (o.get("status") or {}).get("reason") for k, o in objs.items()}
        return objs if reasons == expected else None

    objs = await eventually(all_reported, timeout=60, what=f"STATUS {expected}")
    for obj in objs.values():
        assert obj["status"]["phase"] in ("Pending", "Creating"), obj["status"]
        assert condition(obj, "Ready")["status"] == "False"
    assert "back-off 10s" in condition(objs["command"], "Ready")["message"]
    assert "127.0.0.1:1" in condition(objs["pull"], "Ready")["message"]
    assert condition(objs["host"], "Scheduled")["reason"] == "HostNotFound"

    # The table a user reads.
    table = kubectl(devenv, "get", "dc", "-n", namespace, *names.values()).stdout
    for key, name in names.items():
        row = next(line for line in table.splitlines() if line.startswith(name))
        assert expected[key] in row.split(), row

    # Time passes: the bad command is retried after its back-off, and each retry counts as a restart.
    async def retried() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, names["command"])
        return obj if obj["status"].get("restartCount", 0) >= 1 else None

    await eventually(retried, timeout=40, what="a retry of the failing start, counted as a restart")

    async def pulled_twice() -> list[dict[str, Any]] | None:
        failed = [e for e in await events_for(kube, namespace, names["pull"])
                  if e.get("reason") == "Failed" and e.get("type") == "Warning"]  # fmt: skip
        counts = [(e.get("series") or {}).get("count", 1) for e in failed]
        return failed if counts and max(counts) >= 2 else None

    failed = await eventually(pulled_twice, timeout=40, what="the second failed pull aggregated into one Event")
    assert len(failed) == 1, f"one Warning Event for one distinct failure, not one per retry: {failed}"
    for name in names.values():
        kubectl(devenv, "delete", "dockercontainer", name, "-n", namespace, "--timeout=60s")
