"""The `stats` stream's document: one-shot figures of every running managed container on a host, and the agent's
own counters, as the agent sends them and the operator reads them.

Docker's API has no endpoint for the stats of many containers, so the agent asks its local daemon once per
container (on docker.sock, next to it) and the operator asks each host once per interval: one tunnel round trip
per host whatever the number of containers. Counters are cumulative (CPU nanoseconds, bytes): Prometheus' rate()
turns them into speeds, so one sample per interval is enough and the agent keeps no state between requests.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: The largest stats document the operator reads (200 containers take about 60 KiB).
DOCUMENT_LIMIT = 4 * 1024 * 1024


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ContainerStats(_Frozen):
    """One container's figures, in the units Prometheus wants (seconds, bytes)."""

    id: str = Field(max_length=64)
    namespace: str = Field(default="", max_length=253)
    """The DockerContainer's namespace and name, from the container's dockyard.dev/namespace and /name labels."""
    name: str = Field(default="", max_length=253)
    host: str = Field(default="", max_length=253)
    """The DockerHost the container was created for (its dockyard.dev/host label; empty on older containers)."""
    cpu_seconds: float = Field(ge=0)
    """CPU time used since the container started (user + system)."""
    memory_bytes: int = Field(ge=0)
    """Memory in use as `docker stats` counts it: usage minus the inactive page cache, which the kernel can
    take back at once (the working set, as the kubelet and cAdvisor report it)."""
    memory_limit_bytes: int = Field(ge=0)
    """The container's memory limit, or the host's memory when it has none."""
    network_receive_bytes: int = Field(ge=0)
    network_transmit_bytes: int = Field(ge=0)
    block_read_bytes: int = Field(ge=0)
    block_write_bytes: int = Field(ge=0)


class AgentCounters(_Frozen):
    """The agent's own counters since it started."""

    started_at: float
    """Wall-clock seconds since the epoch when the agent process started."""
    sessions: int = Field(ge=0)
    """Sessions it opened with the server since it started (the first one included)."""
    streams: dict[str, int] = Field(default_factory=dict)
    """Streams served, by kind (docker, tcp, imports, stats)."""


class StatsDocument(_Frozen):
    containers: list[ContainerStats] = Field(default_factory=list)
    errors: dict[str, str] = Field(default_factory=dict)
    """Per container id (or `*` for the whole request): why its figures are missing."""
    docker_calls: int = Field(default=0, ge=0)
    """Requests the agent made to its Docker daemon to answer (one list plus one per container)."""
    agent: AgentCounters | None = None


def from_docker(container_id: str, labels: dict[str, str], raw: dict[str, Any]) -> ContainerStats:
    """Our figures from Docker's stats JSON (cgroup v1 or v2 as dockerd 20.10+ reports them)."""
    cpu = (raw.get("cpu_stats") or {}).get("cpu_usage") or {}
    memory = raw.get("memory_stats") or {}
    usage = int(memory.get("usage") or 0)
    extra: dict[str, Any] = memory.get("stats") or {}
    # The docker CLI's figure: v1 reports the hierarchy's total_inactive_file, v2 only inactive_file.
    inactive = extra.get("total_inactive_file", extra.get("inactive_file", 0)) or 0
    if inactive < usage:
        usage -= int(inactive)
    networks: dict[str, Any] = raw.get("networks") or {}
    read = write = 0
    for entry in (raw.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op", "")).lower()  # "Read" on cgroup v1, "read" on v2
        if op == "read":
            read += int(entry.get("value") or 0)
        elif op == "write":
            write += int(entry.get("value") or 0)
    return ContainerStats(
        id=container_id,
        namespace=labels.get("dockyard.dev/namespace", ""),
        name=labels.get("dockyard.dev/name", ""),
        host=labels.get("dockyard.dev/host", ""),
        cpu_seconds=int(cpu.get("total_usage") or 0) / 1e9,
        memory_bytes=usage,
        memory_limit_bytes=int(memory.get("limit") or 0),
        network_receive_bytes=sum(int(n.get("rx_bytes") or 0) for n in networks.values()),
        network_transmit_bytes=sum(int(n.get("tx_bytes") or 0) for n in networks.values()),
        block_read_bytes=read,
        block_write_bytes=write,
    )
