"""Per-container metrics from Docker's stats through the tunnel: the operator's /metrics against `docker stats`."""

from __future__ import annotations

import asyncio
import re
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dockyard_e2e import (
    Agent,
    apply,
    condition,
    container_manifest,
    eventually,
    get_dc,
    join_tunnel_host,
    kubectl,
    leave_tunnel_host,
)

from dockyard_operator.kube.client import KubeClient

pytestmark = [pytest.mark.kube, pytest.mark.docker]

# 40 MiB in the container's /dev/shm (tmpfs: shared memory is charged to the container and is not page cache the
# kernel may drop, so docker stats and we both see it for as long as the container runs), then idle.
FILL = ["sh", "-c", "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null; trap 'exit 0' TERM; "
        "while true; do sleep 1; done"]  # fmt: skip


@pytest.fixture
def tunnel_host(devenv: Any, operator: Any, tmp_path: Path) -> Iterator[tuple[str, Agent]]:
    name = f"metrics-{uuid.uuid4().hex[:6]}"
    agent = join_tunnel_host(devenv, operator, name, {"site": "metrics"}, tmp_path)
    try:
        yield name, agent
    finally:
        leave_tunnel_host(devenv, name, agent)


def scrape(operator: Any) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def sample(text: str, metric: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if not line.startswith(metric + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


def docker_stats_memory(devenv: Any, container_id: str) -> float:
    """MEM USAGE as `docker stats --no-stream` prints it (the CLI of the same daemon), in bytes."""
    out = subprocess.run(
        ["docker", "-H", devenv.docker_host, "stats", "--no-stream", "--format", "{{.MemUsage}}", container_id],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    usage = out.split("/")[0].strip()
    number, unit = re.fullmatch(r"([\d.]+)\s*([A-Za-z]+)", usage).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


async def test_container_memory_on_metrics_matches_docker_stats_and_goes_with_the_container(
    devenv: Any, operator: Any, kube: KubeClient, namespace: str, tunnel_host: tuple[str, Agent]
) -> None:
    host, _agent = tunnel_host
    name = f"mem-{uuid.uuid4().hex[:6]}"
    apply(devenv, container_manifest(name, namespace, host, image=devenv.test_image, args=FILL))

    async def ready() -> dict[str, Any] | None:
        obj = await get_dc(kube, namespace, name)
        return obj if condition(obj, "Ready").get("status") == "True" else None

    cid = (await eventually(ready, timeout=60, what="Ready through the tunnel"))["status"]["containerID"]
    me = {"namespace": namespace, "name": name, "host": host}

    async def filled() -> float | None:
        value = sample(await asyncio.to_thread(scrape, operator), "dockyard_container_memory_usage_bytes", **me)
        return value if value is not None and value > 40 * 1024**2 else None

    await eventually(filled, timeout=30, what="the container's 40 MiB on /metrics")
    # Read both a few times close together: the figures are samples of a live cgroup.
    pairs = []
    for _ in range(3):
        theirs = await asyncio.to_thread(docker_stats_memory, devenv, cid)
        text = await asyncio.to_thread(scrape, operator)
        ours = sample(text, "dockyard_container_memory_usage_bytes", **me)
        assert ours is not None, text
        pairs.append((ours, theirs))
        await asyncio.sleep(2.1)  # the next poll
    for ours, theirs in pairs:
        assert abs(ours - theirs) <= 0.10 * theirs, f"/metrics {ours:.0f} vs docker stats {theirs:.0f} bytes"

    limit = sample(text, "dockyard_container_memory_limit_bytes", **me)
    assert limit is not None
    assert limit > pairs[-1][0]
    cpu = sample(text, "dockyard_container_cpu_usage_seconds_total", **me)
    assert cpu is not None
    assert cpu > 0
    assert sample(text, "dockyard_container_restarts_total", **me) == 0
    assert sample(text, "dockyard_container_network_receive_bytes_total", **me) is not None
    assert sample(text, "dockyard_container_block_write_bytes_total", **me) is not None
    # One request per host per interval: the agent made 1 list + 1 stats call for its one container.
    assert sample(text, "dockyard_stats_polls_total", host=host, result="ok") is not None
    # The agent's own series.
    assert sample(text, "dockyard_agent_session_start_time_seconds", host=host) is not None
    assert sample(text, "dockyard_agent_connects_total", host=host) == 1
    assert sample(text, "dockyard_agent_reconnects_total", host=host) == 0
    stats_streams = sample(text, "dockyard_agent_streams_total", host=host, kind="stats")
    assert stats_streams is not None
    assert stats_streams >= 1

    kubectl(devenv, "delete", "dockercontainer", name, "-n", namespace, "--timeout=60s")

    async def gone() -> bool | None:
        text = await asyncio.to_thread(scrape, operator)
        return True if f'name="{name}"' not in text else None

    await eventually(gone, timeout=30, what="the container's series removed once it is gone")
