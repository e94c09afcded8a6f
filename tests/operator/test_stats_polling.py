"""The leader's stats poller against a real tunnel server, a real agent process and the dev dockerd: one `stats`
stream per host per round, only managed containers in the document, nothing kept for a host that is gone."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiodocker
import pytest
from dockyard_e2e import SLEEPER

from dockyard_operator.settings import StatsSettings
from dockyard_operator.stats.polling import StatsPoller
from dockyard_tunnel.testing import HOST, TunnelRig, start_rig

pytestmark = [pytest.mark.docker]


@pytest.fixture
async def rig(tmp_path: Path, devenv: Any) -> AsyncIterator[TunnelRig]:
    rig = await start_rig(tmp_path, docker_socket=devenv.docker_host)
    try:
        yield rig
    finally:
        await rig.close()


async def test_one_document_per_host_with_only_managed_containers(
    rig: TunnelRig, devenv: Any, docker: aiodocker.Docker
) -> None:
    run = uuid.uuid4().hex[:6]
    labels = {"dockyard.dev/managed": "true", "dockyard.dev/namespace": "shop", "dockyard.dev/name": f"web-{run}",
              "dockyard.dev/host": HOST}  # fmt: skip
    created = []
    try:
        for name, extra in ((f"stats-managed-{run}", labels), (f"stats-other-{run}", {"other": run})):
            container = await docker.containers.create(
                {"Image": devenv.test_image, "Cmd": SLEEPER, "Labels": extra}, name=name
            )
            created.append(container)
            await container.start()
        agent = await rig.start_agent()
        await rig.wait_connected()
        polls: list[tuple[str, str, int]] = []
        poller = StatsPoller(
            registry=lambda: rig.server.registry,
            settings=StatsSettings(interval=30, timeout=20),
            on_poll=lambda host, result, _seconds, calls: polls.append((host, result, calls)),
        )
        await poller.poll_once()
        assert [(h, r) for h, r, _ in polls] == [(HOST, "ok")]
        (snapshot,) = poller.snapshots()
        mine = [c for c in snapshot.document.containers if c.name == f"web-{run}"]
        assert len(mine) == 1
        assert (mine[0].namespace, mine[0].host) == ("shop", HOST)
        assert mine[0].memory_bytes > 0
        assert mine[0].memory_limit_bytes > mine[0].memory_bytes
        ids = {c.id for c in snapshot.document.containers}
        assert created[0].id in ids
        assert created[1].id not in ids  # not Dockyard's: never reported
        # One list plus one stats call per managed running container on the daemon (others' may run too).
        assert polls[0][2] == 1 + len(snapshot.document.containers) + len(snapshot.document.errors)
        counters = snapshot.document.agent
        assert counters is not None
        assert counters.sessions == 1
        assert counters.streams == {"stats": 1}

        await agent.stop()
        for _ in range(100):
            if rig.server.registry.get(HOST) is None:
                break
            await asyncio.sleep(0.05)
        await poller.poll_once()
        assert poller.snapshots() == []  # a host that is gone keeps no figures
    finally:
        for container in created:
            await container.delete(force=True)
