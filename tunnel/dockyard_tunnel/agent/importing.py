"""Service imports on the agent: listeners on the container networks' gateways that lead to Kubernetes Services.

The operator sends the whole set of listeners this host should have (an `imports` stream); the agent binds what is
new, closes what is gone and answers what it could not do. A container reaches `alias:port`, which its /etc/hosts
maps to its network's gateway; the listener there opens an `import NS/NAME:PORT` stream to the operator, waits for
it to say it connected to the Service, and relays both ways.

Listeners bind only addresses that are gateways of this daemon's networks: never 0.0.0.0, never the host's other
interfaces, whatever the server asks. A gateway address is still reachable from every container on that network
(and from the host), so each connection is checked: its peer must be a running container labelled
dockyard.dev/managed=true whose dockyard.dev/imports label lists this listener's target (the operator sets that
label from the container's spec); the stream to the operator names that container, and the operator checks it may
use the import. Anything else is closed. Listeners survive reconnections (the operator sends the set again on
connect); a connection while no session is up is closed at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from dockyard_mux import MuxError, Session
from dockyard_tunnel.agent.containers import ManagedContainers
from dockyard_tunnel.dockerapi.local import LocalDocker
from dockyard_tunnel.errors import LocalDockerError, StreamHeaderError
from dockyard_tunnel.piping import relay
from dockyard_tunnel.stream_headers import TCP_CONNECTED, ImportTarget, encode_header, parse_import

log = structlog.get_logger("dockyard_tunnel.agent")

#: The operator connects to the Service within this time or the container's connection is closed.
CONNECT_TIMEOUT = 15.0
#: Listeners at most (16 imports per container; a host with many importing containers shares them per port).
MAX_LISTENERS = 256


@dataclass(frozen=True)
class Wanted:
    address: str
    port: int
    target: ImportTarget


def parse_document(document: Any) -> list[Wanted]:
    """The operator's listener document; StreamHeaderError / ValueError when it is not one."""
    if not isinstance(document, dict) or not isinstance(document.get("listeners"), list):
        raise ValueError('an imports document is {"listeners": [...]}')
    if len(document["listeners"]) > MAX_LISTENERS:
        raise ValueError(f"at most {MAX_LISTENERS} listeners")
    out = []
    for entry in document["listeners"]:
        if not isinstance(entry, dict):
            raise ValueError("a listener is an object")
        address = str(ipaddress.ip_address(str(entry.get("address"))))
        port = entry.get("port")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"listener port must be in 1..65535, got {port!r}")
        out.append(Wanted(address=address, port=port, target=parse_import(str(entry.get("import")))))
    return out


class ImportListeners:
    """The listeners this agent serves for Service imports."""

    def __init__(
        self, *, session: Callable[[], Session | None], local_docker: LocalDocker, managed: ManagedContainers
    ) -> None:
        self._session = session
        self._docker = local_docker
        self._managed = managed
        self._servers: dict[tuple[str, int], tuple[ImportTarget, asyncio.Server]] = {}
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def listening(self) -> dict[tuple[str, int], ImportTarget]:
        return {key: target for key, (target, _) in self._servers.items()}

    async def apply(self, wanted: list[Wanted]) -> dict[str, Any]:
        """Make the listeners exactly `wanted` (as far as allowed); returns what listens and what failed why."""
        errors: dict[str, str] = {}
        try:
            gateways = {str(ip) for ip in await self._docker.network_gateways()}
        except LocalDockerError as e:
            return {"listening": [], "errors": {"*": str(e)}}
        keep = {(w.address, w.port): w for w in wanted}
        for key in [k for k, (target, _) in self._servers.items() if k not in keep or keep[k].target != target]:
            _, server = self._servers.pop(key)
            server.close()
        for key, w in keep.items():
            if key in self._servers:
                continue
            name = f"{w.address}:{w.port}"
            if w.address not in gateways:
                errors[name] = f"{w.address} is not the gateway of a Docker network on this host"
                continue
            try:
                server = await asyncio.start_server(
                    functools.partial(self._accepted, w.target), host=w.address, port=w.port, backlog=1024
                )
            except OSError as e:
                errors[name] = f"cannot listen: {e.strerror or e}"
                continue
            self._servers[key] = (w.target, server)
        if errors:
            log.warning("import_listeners_failed", errors=errors)
        log.info("import_listeners", listening=sorted(f"{a}:{p}" for a, p in self._servers))
        return {"listening": sorted(f"{a}:{p}" for a, p in self._servers), "errors": errors}

    async def close(self) -> None:
        for _, server in self._servers.values():
            server.close()
        self._servers.clear()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    def _accepted(self, target: ImportTarget, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._relay(target, reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _relay(self, target: ImportTarget, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            address = ipaddress.ip_address(peer[0])
        except (TypeError, IndexError, ValueError):
            writer.transport.abort()
            return
        try:
            found = await self._managed.at(address)
        except LocalDockerError as e:
            log.warning("import_refused", target=target.key, reason=str(e))
            writer.transport.abort()
            return
        if found is None or target.key not in found.imports:
            log.warning(
                "import_refused", target=target.key, peer=str(address), reason="not a container that imports it"
            )
            writer.transport.abort()
            return
        target = dataclasses.replace(target, client=found.container_id)
        session = self._session()
        if session is None or session.closed:
            writer.transport.abort()
            return
        try:
            stream = await session.open_stream()
        except MuxError:
            writer.transport.abort()
            return
        try:
            await stream.write(encode_header(target))
            async with asyncio.timeout(CONNECT_TIMEOUT):
                answer = await stream.read_exactly(1)
            if answer != TCP_CONNECTED:
                raise StreamHeaderError(f"unexpected answer {answer!r}")
        except (MuxError, TimeoutError, asyncio.IncompleteReadError, StreamHeaderError) as e:
            log.info("import_refused", target=target.text(), reason=str(e) or "no answer in time")
            stream.reset()
            writer.transport.abort()
            return
        await relay(stream, reader, writer)
