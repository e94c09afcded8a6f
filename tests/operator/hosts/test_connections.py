"""Host reachability: a disconnect always wins over a check that started before it, and a broken events stream
cannot turn into a re-check of every container once a second."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.hosts import connections as connections_module
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
    await conn.client.close()
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


async def test_a_failing_events_stream_backs_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each re-subscription re-checks every container of the host: a stream that fails at once must not cause
    one per second. The pauses the loop asks for double up to the cap (recorded, not waited for)."""
    pauses: list[float] = []
    real_sleep = asyncio.sleep

    class RecordingAsyncio:
        def __getattr__(self, name: str) -> Any:
            return getattr(asyncio, name)

        async def sleep(self, delay: float) -> None:
            if delay < 1:
                pauses.append(delay)
            await real_sleep(0)

    monkeypatch.setattr(connections_module, "asyncio", RecordingAsyncio())
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
    await conn.client.close()
    conn.client = fake  # type: ignore[assignment]
    await hosts.tunnel_connected("edge", agent_version="1")
    while len(pauses) < 6:
        await real_sleep(0)
    await hosts.close()
    assert pauses[:6] == [0.02, 0.04, 0.08, 0.08, 0.08, 0.08]
    assert fake.event_streams >= 6


async def test_a_connection_closed_while_its_version_call_waits_stays_closed() -> None:
    """The host was removed (or reconfigured) while an agent's connect was checking Docker's version: the old
    connection must not come back to life with an events task nobody owns."""
    changes: list[str] = []
    hosts = connections(changes)
    conn = await hosts.configure("edge", Endpoint(url="unix:///nonexistent/docker.sock", tunnel=True))
    fake = SlowVersion()
    await conn.client.close()
    conn.client = fake  # type: ignore[assignment]
    connecting = asyncio.create_task(hosts.tunnel_connected("edge", agent_version="1"))
    await fake.asked.wait()
    await hosts.remove("edge")
    fake.release.set()
    await connecting
    assert conn.state.reachable is False
    assert fake.event_streams == 0, "no events stream on a closed connection"
