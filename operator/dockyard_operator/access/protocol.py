"""The access API's names and its WebSocket framing (pure: shared by the operator and the CLI).

Exec and port-forward are WebSockets through kube-apiserver's aggregator. Every binary message starts with one
channel byte, as in Kubernetes' `v5.channel.k8s.io` (stdin 0, stdout 1, stderr 2, status 3, resize 4, and 255 +
a channel to close that channel: how stdin is half-closed without closing the socket).
"""

from __future__ import annotations

import json
from typing import Any

GROUP = "subresources.dockyard.dev"
VERSION = "v1alpha1"
#: The APIService that routes GROUP/VERSION to the operator.
API_SERVICE = f"{VERSION}.{GROUP}"
RESOURCE = "dockercontainers"
#: The virtual subresources; RBAC grants `get` on them in GROUP (the aggregator maps a GET to verb get).
LOG, EXEC, PORTFORWARD, STATS = "log", "exec", "portforward", "stats"
SUBRESOURCES = (LOG, EXEC, PORTFORWARD, STATS)
SUBPROTOCOL = "v1.stream.dockyard.dev"

STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255


def path(namespace: str, name: str, subresource: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{RESOURCE}/{name}/{subresource}"


def frame(channel: int, data: bytes = b"") -> bytes:
    return bytes((channel,)) + data


def close_frame(channel: int) -> bytes:
    return bytes((CLOSE, channel))


def parse(message: bytes) -> tuple[int, bytes]:
    if not message:
        raise ValueError("an empty stream message has no channel")
    return message[0], message[1:]


def resize_frame(width: int, height: int) -> bytes:
    return frame(RESIZE, json.dumps({"Width": width, "Height": height}).encode())


def parse_resize(data: bytes) -> tuple[int, int]:
    size = json.loads(data)
    width, height = int(size["Width"]), int(size["Height"])
    if not (0 < width < 65536 and 0 < height < 65536):
        raise ValueError(f"a terminal of {width}x{height} is not possible")
    return width, height


def status_frame(*, exit_code: int | None = None, error: str | None = None) -> bytes:
    body: dict[str, Any] = {}
    if exit_code is not None:
        body["exitCode"] = exit_code
    if error is not None:
        body["error"] = error
    return frame(STATUS, json.dumps(body).encode())


def api_resource_list() -> dict[str, Any]:
    """Discovery for GROUP/VERSION: what `kubectl api-resources` lists and the aggregator checks."""
    resources = [
        {
            "name": f"{RESOURCE}/{sub}",
            "singularName": "",
            "namespaced": True,
            "kind": "DockerContainer",
            "verbs": ["get"],
        }
        for sub in SUBRESOURCES
    ]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/{VERSION}", "resources": resources}


def api_group() -> dict[str, Any]:
    version = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [version], "preferredVersion": version}
