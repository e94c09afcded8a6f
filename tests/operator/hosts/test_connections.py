"""Host reachability: a disconnect always wins over a check that started before it, and a broken events stream
cannot turn into a re-check of every container once a second."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.hosts.connections import Endpoint, HostConnections
from dockyard_operator.settings import HostSettings


class SlowVersion:
    """A Docker client whose version() waits until the test lets it answer."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.asked = asyncio.Event()
        self.event_streams = 0

    async def version(self) -> dict[str, Any]:
        self.asked.set()
        await self.release.wait()
        return {"Version": "20.10.24", "ApiVersion": "1.41", "Os": "linux", "Arch": "amd64"}

    async def ping(self) -> None:
        return None

    async def events(self, *, filters: Any) -> AsyncIterator[dict[str, Any]]:
        self.event_streams += 1
        for event in self._broken():
            yield event

    def _broken(self) -> list[dict[str, Any]]:
        raise docker_errors.DockerUnavailableError("events: connection reset")

    async def close(self) -> None:
        return None


def connections(changes: list[str], settings: HostSettings | None = None) -> HostConnections:
    return HostConnections(
        settings=settings or HostSettings(heartbeat_interval=3600, agent_connect_grace=3600),
        call_timeout=5,
        on_event=lambda host, key: None,
        on_change=changes.append,
    )


async def test_a_disconnect_during_the_version_call_leaves_the_host_unreachable() -> None:
    """Before the fix: mark_reachable awaited version(), then marked the (meanwhile dead) host reachable."""
    changes: list[str] = []
    hosts = connections(changes)
    conn = await hosts.configure("edge", Endpoint(url="unix:///nonexistent/docker.sock", tunnel=True))
    fake = SlowVersion()
    conn.client = fake  # type: ignore[assignment]
    connecting = asyncio.create_task(hosts.tunnel_connected("edge", agent_version="1"))
    await fake.asked.wait()
    await hosts.tunnel_disconnected("edge", "agent went away")
    fake.release.set()
    await connecting
    assert conn.state.decided
    assert conn.state.reachable is False, "a dead host must not be left marked reachable"
    assert "agent disconnected" in conn.state.message
    await hosts.close()


async def test_a_failing_events_stream_backs_off() -> None:
    changes: list[str] = []
    settings = HostSettings(
        heartbeat_interval=3600,
        agent_connect_grace=3600,
        events_resubscribe_delay=0.01,
        events_resubscribe_max=0.08,
    )
    hosts = connections(changes, settings)
    conn = await hosts.configure("edge", Endpoint(url="unix:///nonexistent/docker.sock", tunnel=True))
    fake = SlowVersion()
    fake.release.set()
    conn.client = fake  # type: ignore[assignment]
    await hosts.tunnel_connected("edge", agent_version="1")
    await asyncio.sleep(0.6)
    await hosts.close()
    # Without back-off: one re-subscription (and one re-check of every container of the host) per 10 ms, ~60.
    # With it: 10, 20, 40, then 80 ms apart: about 10.
    assert 3 <= fake.event_streams <= 15, fake.event_streams
    assert len(changes) <= fake.event_streams + 1
