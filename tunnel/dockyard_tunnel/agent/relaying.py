"""What the agent does with each stream the server opens: read its header, then relay it.

`docker` streams go to the local Docker socket. `tcp IP:PORT` streams are dialled only when IP belongs to a
running container of this daemon labelled dockyard.dev/managed=true; anything else is reset and logged, so a
compromised server cannot use agents to reach arbitrary addresses on their networks.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import structlog

from dockyard_mux import MuxError, Stream
from dockyard_tunnel.agent.containers import ManagedContainers
from dockyard_tunnel.agent.importing import ImportListeners, parse_document
from dockyard_tunnel.agent.stats import StatsCollector
from dockyard_tunnel.dockerapi.local import MANAGED_LABEL
from dockyard_tunnel.errors import LocalDockerError, StreamHeaderError
from dockyard_tunnel.piping import answer_and_relay, bad_gateway_response, read_to_eof, relay
from dockyard_tunnel.stream_headers import (
    DockerTarget,
    ImportsTarget,
    StatsTarget,
    TcpTarget,
    read_header,
)

log = structlog.get_logger("dockyard_tunnel.agent")

# A server that opens a stream sends its header at once; a stream without one within this time is dropped.
HEADER_TIMEOUT = 10.0
# Dialling a container on the same host is local; a slow dial means the container is not listening.
TCP_DIAL_TIMEOUT = 10.0
SOCKET_BUFFER = 256 * 1024


#: The largest imports document accepted (256 listeners of ~100 bytes each, with room).
IMPORTS_DOCUMENT_LIMIT = 256 * 1024


class StreamRelay:
    """Serves streams accepted from the server."""

    def __init__(
        self,
        *,
        docker_socket_path: str,
        managed: ManagedContainers,
        imports: ImportListeners | None = None,
        stats: StatsCollector | None = None,
        counted: Counter[str] | None = None,
    ) -> None:
        self._docker_socket_path = docker_socket_path
        self._managed = managed
        self._imports = imports
        self._stats = stats
        #: Streams served by kind (the agent's counters in stats documents).
        self.counted: Counter[str] = counted if counted is not None else Counter()

    async def handle(self, stream: Stream) -> None:
        try:
            # asyncio.timeout, not wait_for: wait_for runs the read in a task of its own (Python 3.11), one more
            # task switch on the path of every new connection.
            async with asyncio.timeout(HEADER_TIMEOUT):
                target = await read_header(stream)
        except (StreamHeaderError, TimeoutError, MuxError) as e:
            log.warning("stream_refused", stream_id=stream.stream_id, reason=str(e) or "no header in time")
            stream.reset()
            return
        self.counted[target.text().partition(" ")[0]] += 1
        if isinstance(target, DockerTarget):
            await self._relay_docker(stream)
        elif isinstance(target, TcpTarget):
            await self._relay_tcp(stream, target)
        elif isinstance(target, ImportsTarget) and self._imports is not None:
            await self._configure_imports(stream, self._imports)
        elif isinstance(target, StatsTarget) and self._stats is not None:
            await self._send_stats(stream, self._stats)
        else:
            log.warning("stream_refused", stream_id=stream.stream_id, reason=f"{target.text()} is not served here")
            stream.reset()

    async def _configure_imports(self, stream: Stream, imports: ImportListeners) -> None:
        try:
            async with asyncio.timeout(HEADER_TIMEOUT):
                body = await read_to_eof(stream, limit=IMPORTS_DOCUMENT_LIMIT)
            answer = await imports.apply(parse_document(json.loads(body)))
        except (MuxError, TimeoutError, ValueError, StreamHeaderError) as e:
            answer = {"listening": [], "errors": {"*": f"unreadable imports document: {e}"}}
        try:
            await stream.write(json.dumps(answer).encode())
            await stream.send_eof()
            await stream.aclose()
        except MuxError:
            stream.reset()

    async def _send_stats(self, stream: Stream, stats: StatsCollector) -> None:
        document = await stats.collect()
        try:
            await stream.write(document.model_dump_json().encode())
            await stream.send_eof()
            await stream.aclose()
        except MuxError:
            stream.reset()

    async def _relay_docker(self, stream: Stream) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(self._docker_socket_path)
        except OSError as e:
            log.error("docker_unreachable", socket=self._docker_socket_path, error=str(e))
            await self._answer(stream, f"the agent cannot reach its Docker daemon at {self._docker_socket_path}: {e}")
            return
        await relay(stream, reader, writer)

    async def _relay_tcp(self, stream: Stream, target: TcpTarget) -> None:
        try:
            at = await self._managed.at(target.ip, expect=target.container)
        except LocalDockerError as e:
            log.error("tcp_refused", target=target.text(), reason=str(e))
            stream.reset()
            return
        if at is None or (target.container is not None and not at.container_id.startswith(target.container)):
            reason = (
                f"not the IP of a running container labelled {MANAGED_LABEL}=true"
                if at is None
                else "another container has that IP now"
            )
            log.warning("tcp_refused", target=target.text(), reason=reason)
            stream.reset()
            return
        try:
            async with asyncio.timeout(TCP_DIAL_TIMEOUT):
                reader, writer = await asyncio.open_connection(str(target.ip), target.port, limit=SOCKET_BUFFER)
        except (OSError, TimeoutError) as e:
            log.warning("tcp_dial_failed", target=target.text(), error=str(e) or "timeout")
            stream.reset()
            return
        await answer_and_relay(stream, reader, writer)

    @staticmethod
    async def _answer(stream: Stream, message: str) -> None:
        try:
            await stream.write(bad_gateway_response(message))
            await stream.send_eof()
            await stream.aclose()
        except MuxError:
            stream.reset()
