"""One connection per Docker host: a DockerClient, reachability, and a Docker events subscription.

Reachability comes from two places. A tunnel host is reachable while its agent holds a tunnel session (the
tunnel server tells us through `tunnel_connected` / `tunnel_disconnected`; the mux keepalive notices a dead
agent). A direct host (unix:// or tcp:// URL) is pinged every `heartbeat_interval`.

While a host is reachable, one Docker events stream (filtered to Dockyard's containers and the actions that
matter) turns each event into a work-queue key within milliseconds (`on_event(host, key)`). The stream ends
silently when the host goes away and the daemon replays only 256 events, so every (re)connect and every
re-subscription also triggers a full re-check of the host's containers (`on_change(host)`) — events are the fast
path, never the only path.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import ssl
from collections.abc import Callable
from typing import Any

import structlog

from dockyard_operator import tracing
from dockyard_operator.api import labels
from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.dockerapi.client import DockerClient
from dockyard_operator.hosts.states import HostState
from dockyard_operator.settings import HostSettings

#: Only these actions can change what we report or must act on; everything else (exec_* from healthchecks
#: above all: three per probe) is filtered out by the daemon.
WATCHED_ACTIONS = ("create", "start", "die", "oom", "health_status", "destroy", "stop", "kill", "pause", "unpause")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """How to reach a host's Docker API."""

    url: str
    tunnel: bool
    tls_version: str = ""
    """Identity of the TLS material (the Secret's resourceVersion): a new context object alone is no change."""
    ssl_context: ssl.SSLContext | None = dataclasses.field(default=None, compare=False)


class HostConnection:
    def __init__(
        self,
        *,
        name: str,
        endpoint: Endpoint,
        settings: HostSettings,
        call_timeout: float,
        on_event: Callable[[str, str], None],
        on_change: Callable[[str], None],
        on_docker_call: Callable[[str, str], None] | None = None,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.state = HostState()
        self.client = DockerClient.open(
            host=name, url=endpoint.url, ssl_context=endpoint.ssl_context, call_timeout=call_timeout
        )
        self.client.on_call = on_docker_call
        self._settings = settings
        self._on_event = on_event
        self._on_change = on_change
        self._tasks: set[asyncio.Task[None]] = set()
        self._events_task: asyncio.Task[None] | None = None
        self.events_received = 0
        self.session_up = False  # tunnel hosts: whether the agent holds a tunnel session now
        # Bumped by every verdict of "unreachable": a check that started before one must not overrule it.
        self._epoch = 0
        self._closed = False
        self._log = structlog.get_logger("dockyard.hosts").bind(host=name)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        # Outside the reconcile that connects the host: these tasks live as long as the connection.
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro, context=tracing.without_span())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start(self) -> None:
        if self.endpoint.tunnel:
            self._spawn(self._await_agent())
        self._spawn(self._heartbeat())

    async def _await_agent(self) -> None:
        await asyncio.sleep(self._settings.agent_connect_grace)
        if not self.state.decided:
            self.mark_unreachable(f"the agent has not connected within {self._settings.agent_connect_grace:.0f}s")

    async def close(self) -> None:
        self._closed = True
        self._epoch += 1  # a mark_reachable waiting on its version call must not revive a closed connection
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.client.close()

    # -- reachability --------------------------------------------------------------------------------------

    async def mark_reachable(self, *, agent_version: str = "") -> None:
        """The host answered (ping or a new tunnel session): refresh facts, (re)subscribe, re-check all."""
        if self._closed:
            return
        epoch = self._epoch
        try:
            version = await self.client.version()
        except docker_errors.DockerError as exc:
            if epoch == self._epoch:
                self.mark_unreachable(f"connected, but the Docker API does not answer: {exc}")
            return
        if epoch != self._epoch or (self.endpoint.tunnel and not self.session_up):
            # The agent disconnected (or a ping failed) while we waited for the version: that later verdict
            # stands. Marking the host reachable now would leave a dead host "up" with nobody to correct it.
            return
        was = self.state.reachable
        self.state.reachable = True
        self.state.decided = True
        self.state.last_heartbeat = _now()
        if not was:
            self.state.connected_since = self.state.last_heartbeat
        self.state.message = "connected"
        self.state.docker_version = str(version.get("Version", ""))
        self.state.api_version = str(version.get("ApiVersion", ""))
        self.state.os = str(version.get("Os", ""))
        self.state.arch = str(version.get("Arch", ""))
        if agent_version:
            self.state.agent_version = agent_version
        if self._events_task is None or self._events_task.done():
            self._events_task = self._spawn(self._events())
        if not was:
            self._log.info("host reachable", docker=self.state.docker_version)
        self._on_change(self.name)

    def mark_unreachable(self, reason: str) -> None:
        self._epoch += 1
        was = self.state.reachable
        self.state.reachable = False
        self.state.decided = True
        self.state.connected_since = None
        self.state.message = reason
        if self._events_task is not None:
            self._events_task.cancel()
            self._events_task = None
        if was:
            self._log.warning("host unreachable", reason=reason)
        self._on_change(self.name)

    async def _heartbeat(self) -> None:
        """Reachability of the Docker API itself. For a tunnel host only while its agent holds a session (the
        session's own loss is reported by the tunnel at once): an agent up with its dockerd down is unreachable
        too. One failed call in a reconcile never decides this; a failed ping does."""
        while True:
            if self.endpoint.tunnel and not self.session_up:
                await asyncio.sleep(self._settings.heartbeat_interval)
                continue
            try:
                await self.client.ping()
            except docker_errors.DockerError as exc:
                if self.state.reachable or not self.state.decided:
                    self.mark_unreachable(f"ping failed: {exc}")
            else:
                if self.state.reachable:
                    self.state.last_heartbeat = _now()
                else:
                    await self.mark_reachable()
            await asyncio.sleep(self._settings.heartbeat_interval)

    # -- events --------------------------------------------------------------------------------------------

    async def _events(self) -> None:
        filters = {
            "type": ["container"],
            "label": [labels.MANAGED_FILTER],
            "event": list(WATCHED_ACTIONS),
        }
        first = True
        delay = self._settings.events_resubscribe_delay
        while self.state.reachable:
            opened = asyncio.get_running_loop().time()
            received = 0
            try:
                if not first:
                    # The previous stream ended while the host still counts as up: events may have been
                    # missed in between, so re-check everything once the new stream is open.
                    self._on_change(self.name)
                first = False
                async for event in self.client.events(filters=filters):
                    received += 1
                    self.events_received += 1
                    attrs = (event.get("Actor") or {}).get("Attributes") or {}
                    namespace, name = attrs.get(labels.NAMESPACE), attrs.get(labels.NAME)
                    if namespace and name:
                        self._log.debug("docker event", action=event.get("Action"), key=f"{namespace}/{name}")
                        self._on_event(self.name, f"{namespace}/{name}")
            except docker_errors.DockerError as exc:
                self._log.info("docker events stream ended", error=str(exc))
            # A stream that lived and delivered resets the pause; one that fails at once doubles it (capped), so
            # a host whose events endpoint is broken costs a re-check per minute at most, not one per second.
            lived = asyncio.get_running_loop().time() - opened
            if received or lived > self._settings.events_healthy_after:
                delay = self._settings.events_resubscribe_delay
            else:
                delay = min(delay * 2, self._settings.events_resubscribe_max)
            await asyncio.sleep(delay)


class HostConnections:
    """All hosts' connections, keyed by DockerHost name."""

    def __init__(
        self,
        *,
        settings: HostSettings,
        call_timeout: float,
        on_event: Callable[[str, str], None],
        on_change: Callable[[str], None],
        on_docker_call: Callable[[str, str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_docker_call = on_docker_call
        self._call_timeout = call_timeout
        self._on_event = on_event
        self._on_change = on_change
        self._hosts: dict[str, HostConnection] = {}
        self._tunnel_sessions: dict[str, str] = {}  # host -> agent version, while the agent is connected

    def get(self, name: str) -> HostConnection | None:
        return self._hosts.get(name)

    def names(self) -> list[str]:
        return list(self._hosts)

    async def configure(self, name: str, endpoint: Endpoint) -> HostConnection:
        """Create or update the connection for a DockerHost; a changed endpoint means a fresh client."""
        current = self._hosts.get(name)
        if current is not None and current.endpoint == endpoint:
            return current
        if current is not None:
            await current.close()
        conn = HostConnection(
            name=name,
            endpoint=endpoint,
            settings=self._settings,
            call_timeout=self._call_timeout,
            on_event=self._on_event,
            on_change=self._on_change,
            on_docker_call=self._on_docker_call,
        )
        self._hosts[name] = conn
        conn.start()
        if endpoint.tunnel and name in self._tunnel_sessions:
            conn.session_up = True
            await conn.mark_reachable(agent_version=self._tunnel_sessions[name])
        return conn

    async def remove(self, name: str) -> None:
        self._tunnel_sessions.pop(name, None)
        conn = self._hosts.pop(name, None)
        if conn is not None:
            await conn.close()

    async def close(self) -> None:
        for name in list(self._hosts):
            await self.remove(name)

    # -- tunnel hooks --------------------------------------------------------------------------------------

    async def tunnel_connected(self, name: str, *, agent_version: str) -> None:
        self._tunnel_sessions[name] = agent_version
        conn = self._hosts.get(name)
        if conn is not None and conn.endpoint.tunnel:
            conn.session_up = True
            await conn.mark_reachable(agent_version=agent_version)

    async def tunnel_disconnected(self, name: str, reason: str) -> None:
        self._tunnel_sessions.pop(name, None)
        conn = self._hosts.get(name)
        if conn is not None and conn.endpoint.tunnel:
            conn.session_up = False
            conn.mark_unreachable(f"agent disconnected: {reason}")
