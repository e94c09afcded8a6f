"""Models of Docker for unit tests: what `GET /containers/{id}/json` shows for a container we created.

Checked against the real daemon in tests/operator/containers/test_against_real_dockerd.py: the unit tests'
model of inspect is only trustworthy because that test holds for the real dockerd.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from dockyard_operator.containers.desired import DesiredContainer

# What a busybox-like image brings along; Docker merges these into the container's Config.
IMAGE_DEFAULTS: dict[str, Any] = {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "IMAGE_ONLY=1"],
    "Cmd": ["sh"],
    "Entrypoint": None,
    "ExposedPorts": {"9999/tcp": {}},
    "Labels": {"org.opencontainers.image.title": "busybox"},
    "WorkingDir": "",
    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "StartPeriod": 7_000_000_000},
}


def _merge_env(image_env: list[str], user_env: list[str]) -> list[str]:
    # Docker's rule: image variables first, a user variable with the same name replaces the image's.
    names = {e.partition("=")[0] for e in user_env}
    return [e for e in image_env if e.partition("=")[0] not in names] + list(user_env)


def inspect_of(
    desired: DesiredContainer, *, image: Mapping[str, Any] = IMAGE_DEFAULTS, state: str = "running"
) -> dict[str, Any]:
    return inspect_from_config(desired.create_config, name=desired.container_name, image=image, state=state)


def inspect_from_config(
    create_config: Mapping[str, Any],
    *,
    name: str,
    image: Mapping[str, Any] = IMAGE_DEFAULTS,
    state: str = "running",
) -> dict[str, Any]:
    """The inspect body Docker shows for a container created with this `POST /containers/create` body."""
    body = copy.deepcopy(dict(create_config))
    host = body.pop("HostConfig")
    config: dict[str, Any] = {
        "Hostname": "0123456789ab",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Image": body["Image"],
        "Volumes": None,
        "OnBuild": None,
        "StopTimeout": body.get("StopTimeout"),
    }
    config["Env"] = _merge_env(list(image["Env"]), body.get("Env") or [])
    if "Entrypoint" in body:
        config["Entrypoint"] = body["Entrypoint"]
        config["Cmd"] = body.get("Cmd")
    else:
        config["Entrypoint"] = image["Entrypoint"]
        config["Cmd"] = body.get("Cmd") or image["Cmd"]
    config["WorkingDir"] = body.get("WorkingDir") or image["WorkingDir"]
    config["ExposedPorts"] = {**image["ExposedPorts"], **(body.get("ExposedPorts") or {})}
    config["Labels"] = {**image["Labels"], **body["Labels"]}
    if "Healthcheck" in body:
        check = {k: v for k, v in body["Healthcheck"].items() if v}
        for key, value in image["Healthcheck"].items():
            check.setdefault(key, value)
        config["Healthcheck"] = check
    elif image.get("Healthcheck"):
        config["Healthcheck"] = dict(image["Healthcheck"])
    host_config = {
        "Binds": host.get("Binds"),
        "NetworkMode": "default",
        "PortBindings": host.get("PortBindings") or {},
        "RestartPolicy": {"MaximumRetryCount": 0, **host["RestartPolicy"]},
        "NanoCpus": host.get("NanoCpus", 0),
        "Memory": host.get("Memory", 0),
        "MemorySwap": 2 * host["Memory"] if host.get("Memory") else 0,
        "CpuShares": 0,
    }
    running = state == "running"
    return {
        "Id": "f" * 64,
        "Created": "2026-11-26T06:40:00.123456789Z",
        "Path": "sleep",
        "Args": ["300"],
        "State": {
            "Status": state,
            "Running": running,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": 4242 if running else 0,
            "ExitCode": 0 if running else 137,
            "Error": "",
            "StartedAt": "2026-11-26T06:40:01.5Z",
            "FinishedAt": "0001-01-01T00:00:00Z" if running else "2026-11-26T06:41:00.000000001Z",
        },
        "Image": "sha256:" + "a" * 64,
        "Name": "/" + name,
        "RestartCount": 0,
        "Mounts": [],
        "Config": config,
        "HostConfig": host_config,
        "NetworkSettings": {
            "IPAddress": "172.31.0.2",
            "Networks": {"bridge": {"IPAddress": "172.31.0.2", "Gateway": "172.31.0.1", "IPPrefixLen": 24}},
        },
    }
