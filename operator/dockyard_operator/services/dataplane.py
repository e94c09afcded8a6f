"""The data plane: one listener per DockerService port, each connection spliced to a Ready backend through the tunnel.

A connection picks a backend (services/balancing.py), dials it through that backend's host agent (`tcp IP:PORT`;
the agent answers once connected, so a failed dial has sent nothing and is tried once more on another backend),
then copies both ways with half-close. Back-pressure is end to end: the splice waits for the client socket to drain
and for mux credit, so a client that stops reading stops the container, never grows the operator's memory.

Backends change under a running listener (`update`): new connections see the new set at once; connections already
open to a backend that turned unready are left to finish, as kube-proxy leaves established connections alone.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from dockyard_mux import Stream
from dockyard_operator import tracing
from dockyard_operator.metrics import Metrics
from dockyard_operator.services.backends import Backend
from dockyard_operator.services.balancing import Balancer
from dockyard_tunnel.errors import DialError
from dockyard_tunnel.piping import relay

log = structlog.get_logger("dockyard.dataplane")

Dial = Callable[[str, str, int, str | None], Awaitable[Stream]]
"""(host, ip, port, container id) -> a stream connected to ip:port on that host; raises DialError."""

#: Bytes a client socket's reader may hold before reading pauses (asyncio's default is 64 KiB): fewer, larger
#: reads move bulk data with fewer system calls; per connection it is still bounded.
SOCKET_BUFFER = 256 * 1024
#: Backends tried per connection: the first pick and, if its dial fails, one other.
DIAL_ATTEMPTS = 2
#: A backend whose dial failed takes no new connections for this long (passive ejection, as Envoy's outlier
#: detection does): a Ready container that is not listening yet would otherwise win every least-loaded pick, having
#: no open connections, and fail them all.
EJECTION_SECONDS = 5.0
#: Connections the kernel queues for a listener before accept (asyncio's default is 100: a burst of 1000 new
#: connections then loses SYNs, and clients wait 1, 3, 7 s for retransmits).
ACCEPT_BACKLOG = 4096
#: Open connections per DockerService at most; more are closed at once. Each holds two sockets, a task and up to
#: about 0.5 MiB of buffers when its client reads slowly, so the operator's memory stays bounded.
MAX_CONNECTIONS = 8192


@dataclass(frozen=True)
class DataPlaneConfig:
    """Where the listeners are, and how long a dial may take."""

    listen_host: str
    """The address every listener binds (port 0: the kernel picks; the EndpointSlice says which)."""

    dial_timeout: float = 5.0
    """Seconds for the agent to say it connected to the container; longer means the container is not listening
    or its host is slow, and the connection tries another backend. Default 5."""


@dataclass
class _Service:
    key: str
    backends: list[Backend] = field(default_factory=list)
    affinity_timeout: float | None = None
    balancer: Balancer = field(default_factory=Balancer)
    listeners: dict[str, asyncio.Server] = field(default_factory=dict)
    connections: set[asyncio.Task[None]] = field(default_factory=set)
    ejected: dict[str, float] = field(default_factory=dict)  # backend key -> monotonic time it may be picked again


class DataPlane:
    """The listeners of every DockerService this operator serves."""

    def __init__(self, config: DataPlaneConfig, *, dial: Dial, metrics: Metrics | None = None) -> None:
        self._config = config
        self._dial = dial
        self._metrics = metrics
        self._services: dict[str, _Service] = {}

    def ports(self, key: str) -> dict[str, int]:
        """Service port key -> the port its listener is bound to."""
        service = self._services.get(key)
        return {} if service is None else {k: _bound_port(s) for k, s in service.listeners.items()}

    async def update(
        self,
        key: str,
        *,
        ports: Sequence[str],
        backends: Sequence[Backend],
        affinity_timeout: float | None,
        preferred: Mapping[str, int] | None = None,
    ) -> dict[str, int]:
        """Serve `key` on these port keys with these backends; returns the bound port of each port key.

        A new listener binds `preferred[port]` when given and free (the port the EndpointSlice already names),
        else a port the kernel picks."""
        service = self._services.get(key)
        if service is None:
            service = self._services[key] = _Service(key=key)
        gone = {b.key for b in service.backends} - {b.key for b in backends}
        service.backends = list(backends)
        for backend in gone:
            service.ejected.pop(backend, None)
            if self._metrics is not None:
                self._metrics.forget_service_backend(key, backend)
        service.affinity_timeout = affinity_timeout
        for port in [p for p in service.listeners if p not in ports]:
            server = service.listeners.pop(port)
            server.close()
        for port in ports:
            if port not in service.listeners:
                service.listeners[port] = await self._listen(service, port, (preferred or {}).get(port, 0))
        return self.ports(key)

    async def _listen(self, service: _Service, port: str, number: int) -> asyncio.Server:
        listen = functools.partial(
            asyncio.start_server,
            functools.partial(self._accept, service, port),
            host=self._config.listen_host,
            reuse_address=True,
            limit=SOCKET_BUFFER,
            backlog=ACCEPT_BACKLOG,
        )
        # Started outside the reconcile's span: the server's connections inherit the context it was started in.
        loop = asyncio.get_running_loop()
        if number:
            try:
                return await loop.create_task(listen(port=number), context=tracing.without_span())
            except OSError:
                pass  # taken meanwhile: a new port, and the EndpointSlice follows
        return await loop.create_task(listen(port=0), context=tracing.without_span())

    async def remove(self, key: str) -> None:
        """Stop serving `key`: its listeners close and its open connections are ended."""
        service = self._services.pop(key, None)
        if service is None:
            return
        if self._metrics is not None:
            for backend in service.backends:
                self._metrics.forget_service_backend(key, backend.key)
            self._metrics.forget_service(key)
        for server in service.listeners.values():
            server.close()
        for task in list(service.connections):
            task.cancel()
        await asyncio.gather(*service.connections, return_exceptions=True)

    async def close(self) -> None:
        for key in list(self._services):
            await self.remove(key)

    def keys(self) -> list[str]:
        return list(self._services)

    # -- connections ------------------------------------------------------------------------------------------

    async def _accept(
        self, service: _Service, port: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._services.get(service.key) is not service:  # accepted just before remove() closed the listener
            writer.transport.abort()
            return
        if len(service.connections) >= MAX_CONNECTIONS:
            log.warning("too many connections; refusing", service=service.key, limit=MAX_CONNECTIONS)
            writer.transport.abort()
            return
        task = asyncio.current_task()
        if task is not None:  # so remove() can end it
            service.connections.add(task)
            task.add_done_callback(service.connections.discard)
        try:
            await self._serve(service, port, reader, writer)
        except asyncio.CancelledError:
            # remove() ends the connection. Not re-raised: this is the task's outermost frame, and Python 3.11's
            # stream server callback calls exception() on its task, which raises again for a cancelled one.
            writer.transport.abort()
        except Exception:  # one connection's bug must not be swallowed silently, nor end the listener
            log.exception("connection failed", service=service.key)
            writer.transport.abort()

    async def _serve(
        self, service: _Service, port: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) and peer else None
        tried: set[str] = set()
        for _ in range(DIAL_ATTEMPTS):
            backend = self._pick(service, port, client, tried)
            if backend is None:
                break
            tried.add(backend.key)
            service.balancer.opened(backend.key)
            try:
                started = time.monotonic()
                try:
                    stream = await self._dial(
                        str(backend.host), str(backend.ip), backend.ports[port], backend.container_id
                    )
                except DialError as exc:
                    log.info("dial failed", service=service.key, backend=backend.key, error=str(exc))
                    self._count(service.key, backend.key, "failed")
                    service.ejected[backend.key] = time.monotonic() + EJECTION_SECONDS
                    continue
                service.ejected.pop(backend.key, None)
                self._observe_dial(service.key, time.monotonic() - started)
                await self._relay(service, backend, stream, reader, writer)
                return
            finally:
                service.balancer.closed(backend.key)
        # No Ready backend, or every one tried refused: the client sees its connection reset, as with a Service
        # whose endpoints are all gone (kube-proxy rejects; there is no protocol to answer in).
        writer.transport.abort()

    def _pick(self, service: _Service, port: str, client: str | None, tried: set[str]) -> Backend | None:
        ready = {b.key: b for b in service.backends if b.ready and port in b.ports and b.host and b.ip}
        now = time.monotonic()
        healthy = [k for k in ready if service.ejected.get(k, 0.0) <= now]
        # All ejected: try them anyway (one may be back) rather than refuse everything.
        chosen = service.balancer.pick(
            healthy or list(ready), client=client, affinity_timeout=service.affinity_timeout, exclude=tried
        )
        return None if chosen is None else ready[chosen]

    async def _relay(
        self,
        service: _Service,
        backend: Backend,
        stream: Stream,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._count(service.key, backend.key, "opened")
        if self._metrics is not None:
            self._metrics.service_connection_active(service.key, backend.key, +1)
        try:
            progress = await relay(stream, reader, writer)
        finally:
            if self._metrics is not None:
                self._metrics.service_connection_active(service.key, backend.key, -1)
        self._bytes(service.key, backend.key, progress.to_stream, progress.to_socket)

    # -- metrics ------------------------------------------------------------------------------------------------

    def _count(self, service: str, backend: str, what: str) -> None:
        if self._metrics is not None:
            self._metrics.count_service_connection(service, backend, what)

    def _observe_dial(self, service: str, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.observe_service_dial(service, seconds)

    def _bytes(self, service: str, backend: str, to_backend: int, to_client: int) -> None:
        if self._metrics is not None:
            self._metrics.count_service_bytes(service, backend, to_backend, to_client)


def _bound_port(server: asyncio.Server) -> int:
    for sock in server.sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            return int(sock.getsockname()[1])
    raise RuntimeError("a data-plane listener has no socket")
