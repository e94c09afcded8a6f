"""The agent's questions to its local Docker daemon."""

from __future__ import annotations

import contextlib
import ipaddress
import json
from types import TracebackType
from typing import Any

import aiodocker
import aiohttp

from dockyard_tunnel.errors import LocalDockerError

#: Containers with this label set to "true" are Dockyard's; only their IPs may be dialled by `tcp` streams.
MANAGED_LABEL = "dockyard.dev/managed"
#: On a container with Service imports: the targets it may reach (NS/NAME:PORT, comma-separated), set by the operator.
IMPORTS_LABEL = "dockyard.dev/imports"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class LocalDocker:
    """A small aiodocker client for the agent's own daemon."""

    def __init__(self, *, socket_path: str) -> None:
        # Pinned API version: "auto" would cost a GET /version per client; 1.41 is Docker 20.10, the oldest
        # daemon we support, and newer daemons still accept it.
        self._docker = aiodocker.Docker(url=f"unix://{socket_path}", api_version="v1.41")

    async def __aenter__(self) -> LocalDocker:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._docker.close()

    async def engine_version(self) -> str:
        try:
            info: dict[str, Any] = await self._docker.version()
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as e:
            raise LocalDockerError(f"cannot ask the local Docker daemon for its version: {e}") from e
        return str(info.get("Version", "unknown"))

    async def managed_containers_by_ip(self) -> dict[IPAddress, tuple[str, frozenset[str]]]:
        """Running managed containers by IP address (every network): (container id, its import targets)."""
        filters = json.dumps({"label": [f"{MANAGED_LABEL}=true"], "status": ["running"]})
        try:
            containers = await self._docker.containers.list(filters=filters)
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as e:
            raise LocalDockerError(f"cannot list managed containers: {e}") from e
        out: dict[IPAddress, tuple[str, frozenset[str]]] = {}
        for container in containers:
            raw = container._container
            imports = frozenset(t for t in str((raw.get("Labels") or {}).get(IMPORTS_LABEL, "")).split(",") if t)
            networks: dict[str, Any] = (raw.get("NetworkSettings") or {}).get("Networks") or {}
            for network in networks.values():
                for key in ("IPAddress", "GlobalIPv6Address"):
                    if network.get(key):
                        out[ipaddress.ip_address(network[key])] = (str(raw.get("Id")), imports)
        return out

    async def network_gateways(self) -> set[IPAddress]:
        """Gateway addresses of this daemon's networks: this machine's addresses on its container networks."""
        try:
            networks = await self._docker.networks.list()
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as e:
            raise LocalDockerError(f"cannot list Docker networks: {e}") from e
        gateways: set[IPAddress] = set()
        for network in networks:
            for entry in (network.get("IPAM") or {}).get("Config") or []:
                with contextlib.suppress(ValueError, TypeError):
                    gateways.add(ipaddress.ip_address(entry.get("Gateway") or ""))
        return gateways

    async def running_managed(self) -> list[tuple[str, dict[str, str]]]:
        """Running managed containers: (id, labels)."""
        filters = json.dumps({"label": [f"{MANAGED_LABEL}=true"], "status": ["running"]})
        try:
            containers = await self._docker.containers.list(filters=filters)
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as e:
            raise LocalDockerError(f"cannot list managed containers: {e}") from e
        return [(str(c._container.get("Id")), dict(c._container.get("Labels") or {})) for c in containers]

    async def one_shot_stats(self, container_id: str) -> dict[str, Any]:
        """Docker's stats of one container, one sample (`one-shot`: no second sample for precpu, API 1.41)."""
        try:
            raw: dict[str, Any] = await self._docker._query_json(
                f"containers/{container_id}/stats", params={"stream": "false", "one-shot": "true"}
            )
        except (aiodocker.DockerError, aiohttp.ClientError, OSError) as e:
            raise LocalDockerError(f"cannot read the stats of {container_id[:12]}: {e}") from e
        return raw
