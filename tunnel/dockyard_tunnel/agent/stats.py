"""The agent's answer to a `stats` stream: one-shot stats of its running managed containers, in one document.

One list call, then one stats call per container on the local socket, at most CONCURRENCY at a time. dockerd
answers stats from a collector that samples every subscribed container once a second, so even a `one-shot` call
waits for the next tick (measured on 20.10: about 1 s each, one after another): calls in flight together share a
tick, and 200 containers take 2-3 ticks at 100 in flight, 25 at 8. CPU is the same either way (one cgroup read per
container); the bound is aiohttp's connection pool (100 sockets to docker.sock), so a host with thousands of
containers does not open thousands of sockets. A container that stopped between the list and its stats call is
reported in `errors`, not as a failure of the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from dockyard_tunnel.container_stats import AgentCounters, ContainerStats, StatsDocument, from_docker
from dockyard_tunnel.dockerapi.local import LocalDocker
from dockyard_tunnel.errors import LocalDockerError

#: Stats calls in flight at once on the local daemon (aiohttp's default pool size: see the module docstring).
CONCURRENCY = 100
#: One stats call that takes longer is reported in `errors`: a call the daemon never answers (a container in the
#: middle of its removal) must not hold a slot of CONCURRENCY forever, nor outlive the operator's wait (20 s).
CALL_TIMEOUT = 10.0
#: The whole document is sent after at most this long, with whatever is missing by then in `errors`: slow calls
#: queued behind CONCURRENCY others must not make the operator give up on every figure (it waits 20 s by default).
COLLECT_TIMEOUT = 15.0


@dataclass
class AgentActivity:
    """What the agent counts about itself; sent with every stats document."""

    started_at: float = field(default_factory=time.time)
    sessions: int = 0
    streams: Counter[str] = field(default_factory=Counter)

    def counters(self) -> AgentCounters:
        return AgentCounters(started_at=self.started_at, sessions=self.sessions, streams=dict(self.streams))


class StatsCollector:
    def __init__(
        self,
        local_docker: LocalDocker,
        activity: AgentActivity,
        *,
        concurrency: int = CONCURRENCY,
        call_timeout: float = CALL_TIMEOUT,
        collect_timeout: float = COLLECT_TIMEOUT,
    ) -> None:
        self._docker = local_docker
        self._activity = activity
        self._limit = asyncio.Semaphore(concurrency)
        self._call_timeout = call_timeout
        self._collect_timeout = collect_timeout

    async def collect(self) -> StatsDocument:
        try:
            listed = await self._docker.running_managed()
        except LocalDockerError as e:
            return StatsDocument(errors={"*": str(e)}, docker_calls=1, agent=self._activity.counters())
        errors: dict[str, str] = {}

        async def one(container_id: str, labels: dict[str, str]) -> ContainerStats | None:
            async with self._limit:
                try:
                    async with asyncio.timeout(self._call_timeout):
                        raw = await self._docker.one_shot_stats(container_id)
                except LocalDockerError as e:
                    errors[container_id] = str(e)
                    return None
                except TimeoutError:
                    errors[container_id] = f"no stats from the daemon within {self._call_timeout:g}s"
                    return None
                return from_docker(container_id, labels, raw)

        tasks = [asyncio.create_task(one(cid, labels)) for cid, labels in listed]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._collect_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            for (cid, _), task in zip(listed, tasks, strict=True):
                if task in late:
                    errors[cid] = f"no stats within the document's {self._collect_timeout:g}s"
        found = [t.result() for t in tasks if not t.cancelled()]
        return StatsDocument(
            containers=[s for s in found if s is not None],
            errors=errors,
            docker_calls=1 + len(listed),
            agent=self._activity.counters(),
        )
