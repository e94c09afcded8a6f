"""Registry credentials for an image pull, from kubernetes.io/dockerconfigjson Secrets (pure)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")


def registry_of(image: str) -> str:
    """The registry host of an image reference; Docker Hub when the first component is not a host."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def _normalize(key: str) -> str:
    key = key.removeprefix("https://").removeprefix("http://")
    return key.split("/", 1)[0]


def auth_for(image: str, dockerconfigs: Iterable[Mapping[str, bytes]]) -> dict[str, Any] | None:
    """X-Registry-Auth for `image` from the first Secret that has an entry for its registry, else None."""
    registry = registry_of(image)
    wanted = {_normalize(k) for k in DOCKER_HUB_KEYS} if registry == "docker.io" else {registry}
    for data in dockerconfigs:
        raw = data.get(".dockerconfigjson")
        if raw is None:
            continue
        try:
            auths = json.loads(raw).get("auths") or {}
        except (ValueError, AttributeError):
            continue
        for key, entry in auths.items():
            if _normalize(key) not in wanted or not isinstance(entry, dict):
                continue
            username, password = entry.get("username"), entry.get("password")
            if not (username and password) and entry.get("auth"):
                username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            if username and password:
                return {"username": username, "password": password, "serveraddress": key}
            if entry.get("identitytoken"):
                return {"identitytoken": entry["identitytoken"], "serveraddress": key}
    return None
