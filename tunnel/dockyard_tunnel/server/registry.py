"""The session registry: host name -> the one live mux session for that host, plus connect/disconnect hooks.

One session per host: a new authenticated connection replaces the old one (the agent may have reconnected
before the server noticed the old connection died). The replaced session gets on_disconnect first, then the
new one gets on_connect, so a status consumer always sees the events in a sensible order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from dockyard_mux import Session
from dockyard_tunnel.errors import HostNotConnectedError
from dockyard_tunnel.handshake import AgentHello

log = structlog.get_logger("dockyard_tunnel.server")


@dataclass(frozen=True, slots=True)
class HostInfo:
    """What is known about a connected host (from its handshake and its connection)."""

    host: str
    hello: AgentHello
    remote: str
    connected_at: float  # wall-clock seconds since the epoch, for status timestamps


@dataclass(frozen=True, slots=True)
class HostStats:
    """Live counters of a host's session."""

    bytes_sent: int
    bytes_received: int
    open_streams: int
    rtt: float | None


ConnectHook = Callable[[HostInfo], Awaitable[None]]
DisconnectHook = Callable[[str, str], Awaitable[None]]  # (host, reason)


@dataclass(slots=True)
class _Entry:
    session: Session
    info: HostInfo


def describe_close(session: Session) -> str:
    reason = session.close_reason
    if reason is None:
        return "closed"
    return str(reason) or type(reason).__name__


class SessionRegistry:
    """Live sessions by host name. All methods run on the event loop that owns the sessions."""

    def __init__(self, *, on_connect: ConnectHook | None = None, on_disconnect: DisconnectHook | None = None) -> None:
        self._entries: dict[str, _Entry] = {}
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._closing: set[asyncio.Task[None]] = set()
        self._connects: dict[str, int] = {}

    def get(self, host: str) -> Session | None:
        entry = self._entries.get(host)
        if entry is None or entry.session.closed:
            return None
        return entry.session

    def require(self, host: str) -> Session:
        session = self.get(host)
        if session is None:
            raise HostNotConnectedError(host)
        return session

    def hosts(self) -> list[str]:
        return sorted(self._entries)

    def info(self, host: str) -> HostInfo | None:
        entry = self._entries.get(host)
        return entry.info if entry else None

    def connects(self, host: str) -> int:
        """Sessions `host` attached since this registry started (a flapping agent shows as a growing count)."""
        return self._connects.get(host, 0)

    def stats(self, host: str) -> HostStats:
        session = self.require(host)
        return HostStats(
            bytes_sent=session.bytes_sent,
            bytes_received=session.bytes_received,
            open_streams=session.num_streams,
            rtt=session.rtt,
        )

    async def attach(self, *, session: Session, info: HostInfo) -> None:
        """Register `session` for `info.host`, replacing (and closing) any previous session of that host."""
        old = self._entries.get(info.host)
        self._entries[info.host] = _Entry(session=session, info=info)
        self._connects[info.host] = self._connects.get(info.host, 0) + 1
        if old is not None:
            reason = f"replaced by a new connection from {info.remote}"
            log.info("session_replaced", host=info.host, remote=info.remote)
            task = asyncio.create_task(old.session.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            await self._notify_disconnect(info.host, reason)
        log.info("host_connected", host=info.host, remote=info.remote, agent=info.hello.model_dump())
        if self._on_connect is not None:
            try:
                await self._on_connect(info)
            except Exception:
                log.exception("on_connect_hook_failed", host=info.host)

    async def detach(self, *, host: str, session: Session, reason: str) -> None:
        """Forget `session` if it is still the registered one for `host`, and report the disconnect."""
        entry = self._entries.get(host)
        if entry is None or entry.session is not session:
            return  # already replaced: the replacement reported the disconnect
        del self._entries[host]
        log.info("host_disconnected", host=host, reason=reason)
        await self._notify_disconnect(host, reason)

    async def _notify_disconnect(self, host: str, reason: str) -> None:
        if self._on_disconnect is not None:
            try:
                await self._on_disconnect(host, reason)
            except Exception:
                log.exception("on_disconnect_hook_failed", host=host)

    async def close_all(self) -> None:
        """Close every session (server shutdown); their handlers report the disconnects."""
        sessions = [entry.session for entry in self._entries.values()]
        await asyncio.gather(*(s.close() for s in sessions), *self._closing, return_exceptions=True)
