"""Service imports at run time: the listeners each agent should have, and each imported connection's way to its
Service (services/imports.py decides who may import what).

- ImportSync (keyed by host): computes the host's listeners from the DockerContainers placed on it and sends the
  whole set to its agent on an `imports` stream when it differs from what that session last got (a new session
  gets it again). The agent answers what listens and what failed.
- ImportConnector: an agent opened `import NS/NAME:PORT from ID` for the container ID. Refused unless that
  container is placed on that host, declares the import and may use it (never trust the agent's word for what it
  may reach; the agent checked the connection came from that container). Then the
  Service's address: its ClusterIP when the operator runs in a cluster (kube-proxy balances), else a ready endpoint
  of its EndpointSlices (this machine has no kube-proxy); connect, answer TCP_CONNECTED, relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
import weakref
from collections.abc import Callable
from typing import Any

import structlog

from dockyard_mux import MuxError, Session, Stream
from dockyard_operator.containers import indexing
from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.dockerapi.client import DockerClient
from dockyard_operator.informer.store import Reader
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import ENDPOINTSLICES, SERVICES
from dockyard_operator.services import imports
from dockyard_tunnel.errors import HostNotConnectedError, StreamHeaderError
from dockyard_tunnel.piping import answer_and_relay, read_to_eof
from dockyard_tunnel.server.registry import SessionRegistry
from dockyard_tunnel.server.streams import open_target_stream
from dockyard_tunnel.stream_headers import ImportsTarget, ImportTarget, read_header

JSON = dict[str, Any]
log = structlog.get_logger("dockyard.imports")

#: A network's gateway is read from Docker once per this many seconds per host (it changes with the daemon's
#: configuration only).
GATEWAY_TTL = 600.0
#: How long a Service's resolved address is reused (a burst of connections costs one lookup).
ADDRESS_TTL = 2.0
ANSWER_TIMEOUT = 10.0
ANSWER_LIMIT = 256 * 1024
#: Listeners per host at most (the agent refuses a larger document).
MAX_LISTENERS = 256
CONNECT_TIMEOUT = 5.0
ADDRESS_CACHE_LIMIT = 4096


class Gateways:
    """The container network's gateway per host, cached."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, str]] = {}

    async def get(self, host: str, docker: DockerClient) -> str:
        cached = self._known.get(host)
        if cached is not None and time.monotonic() - cached[0] < GATEWAY_TTL:
            return cached[1]
        gateway = await docker.network_gateway()
        self._known[host] = (time.monotonic(), gateway)
        return gateway


class ImportSync:
    def __init__(
        self,
        *,
        containers: Reader,
        namespaces: Reader,
        registry: Callable[[], SessionRegistry | None],
        docker_for: Callable[[str], DockerClient | None],
        gateways: Gateways,
        on_failures_changed: Callable[[str], None] | None = None,
    ) -> None:
        self._on_failures_changed = on_failures_changed
        self._failures: dict[str, dict[int, str]] = {}
        self._containers = containers
        self._namespaces = namespaces
        self._registry = registry
        self._docker_for = docker_for
        self._gateways = gateways
        self._pushed: dict[str, tuple[weakref.ref[Session], list[JSON]]] = {}

    def failures(self, host: str) -> dict[int, str]:
        """Import ports the host's agent could not listen on, with its reason (for the ServiceImports condition)."""
        return dict(self._failures.get(host, {}))

    def _record_failures(self, host: str, errors: dict[str, Any]) -> None:
        by_port: dict[int, str] = {}
        for where, why in errors.items():
            port = where.rpartition(":")[2]
            if port.isdigit():
                by_port[int(port)] = str(why)
            else:  # the whole document failed ("*")
                by_port[0] = str(why)
        if by_port != self._failures.get(host, {}):
            self._failures[host] = by_port
            if self._on_failures_changed is not None:
                self._on_failures_changed(host)

    def wanted(self, host: str, gateway: str) -> list[JSON]:
        placed = indexing.placed_on(self._containers, host)
        found, _ = imports.listeners(placed, gateway, self._namespaces.get)
        return [listener.document() for listener in found]

    async def sync(self, host: str) -> float | None:
        registry = self._registry()
        session = registry.get(host) if registry is not None else None
        docker = self._docker_for(host)
        if registry is None or session is None or docker is None:
            self._pushed.pop(host, None)
            return None  # connecting again wakes us
        try:
            gateway = await self._gateways.get(host, docker)
        except docker_errors.DockerError as exc:
            log.warning("cannot read the container network's gateway", host=host, error=str(exc))
            return 10.0
        wanted = self.wanted(host, gateway)
        if len(wanted) > MAX_LISTENERS:
            log.warning("too many import listeners for one host; serving the first", host=host, wanted=len(wanted))
            wanted = wanted[:MAX_LISTENERS]
        pushed = self._pushed.get(host)
        if pushed is not None and pushed[0]() is session and pushed[1] == wanted:
            return None
        # Every new session gets the set once, also an empty one: an agent may hold listeners from before an
        # operator restart that nothing declares any more.
        try:
            stream = await open_target_stream(registry, host=host, target=ImportsTarget())
            await stream.write(json.dumps({"listeners": wanted}).encode())
            await stream.send_eof()
            async with asyncio.timeout(ANSWER_TIMEOUT):
                body = await read_to_eof(stream, limit=ANSWER_LIMIT)
            with contextlib.suppress(MuxError):
                await stream.aclose()
            answer = json.loads(body or b"{}")
            if not isinstance(answer, dict):
                raise ValueError("the agent's answer is not a JSON object")
        except (HostNotConnectedError, MuxError, TimeoutError, ValueError) as exc:
            log.warning("could not send the import listeners", host=host, error=str(exc))
            return 30.0
        log.info("import listeners sent", host=host, listening=answer.get("listening"))
        errors = answer.get("errors")
        self._record_failures(host, errors if isinstance(errors, dict) else {})
        if errors:
            log.warning("the agent could not serve some imports", host=host, errors=answer["errors"])
            return 30.0  # a port in use may free up; try again (what did bind stays)
        self._pushed[host] = (weakref.ref(session), wanted)
        return None


class ImportConnector:
    def __init__(self, *, kube: KubeClient, containers: Reader, namespaces: Reader, in_cluster: bool | None = None):
        self._kube = kube
        self._containers = containers
        self._namespaces = namespaces
        self._in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) if in_cluster is None else in_cluster
        self._addresses: dict[ImportTarget, tuple[float, list[tuple[str, int]]]] = {}

    async def handle(self, host: str, stream: Stream) -> None:
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                target = await read_header(stream)
        except (StreamHeaderError, MuxError, TimeoutError) as exc:
            log.warning("agent stream refused", host=host, reason=str(exc) or "no header in time")
            stream.reset()
            return
        if not isinstance(target, ImportTarget):
            log.warning("agent stream refused", host=host, reason=f"{target.text()} is not for the operator")
            stream.reset()
            return
        if not self._declared(host, target):
            log.warning("import refused", host=host, target=target.text(), reason="no container there may use it")
            stream.reset()
            return
        socket = await self._connect(target)
        if socket is None:
            stream.reset()
            return
        reader, writer = socket
        await answer_and_relay(stream, reader, writer)

    def _declared(self, host: str, target: ImportTarget) -> bool:
        """The container the agent names runs on that host, declares this import, and may use it."""
        if target.client is None:
            return False
        for obj in indexing.placed_on(self._containers, host):
            if (obj.get("status") or {}).get("containerID") != target.client:
                continue
            return any(v.target == target.key and v.allowed for v in imports.judged(obj, self._namespaces.get))
        return False

    async def _connect(self, target: ImportTarget) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        candidates = await self._addresses_of(target)
        random.shuffle(candidates)
        for ip, port in candidates[:2]:  # one more try on another endpoint, as the data plane does
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    return await asyncio.open_connection(ip, port)
            except (OSError, TimeoutError) as exc:
                log.info("import connect failed", target=target.text(), address=f"{ip}:{port}", error=str(exc))
        if not candidates:
            log.info("import has no address", target=target.text())
        return None

    async def _addresses_of(self, target: ImportTarget) -> list[tuple[str, int]]:
        cached = self._addresses.get(target)
        if cached is not None and time.monotonic() - cached[0] < ADDRESS_TTL:
            return list(cached[1])
        try:
            found = await self._resolve(target)
        except kube_errors.KubeError as exc:
            log.info("cannot resolve an import", target=target.text(), error=str(exc))
            found = []
        if len(self._addresses) > ADDRESS_CACHE_LIMIT:
            self._addresses.clear()  # keys come from containers' specs: keep the cache bounded
        self._addresses[target] = (time.monotonic(), found)
        return list(found)

    async def _resolve(self, target: ImportTarget) -> list[tuple[str, int]]:
        service = await self._kube.get(SERVICES, target.service, namespace=target.namespace)
        spec = service.get("spec") or {}
        port = next((p for p in spec.get("ports") or [] if p.get("port") == target.port), None)
        if port is None:
            return []
        cluster_ip = spec.get("clusterIP")
        if self._in_cluster and cluster_ip and cluster_ip != "None":
            return [(str(cluster_ip), target.port)]  # kube-proxy picks the endpoint
        # Outside a cluster (or a headless Service): a ready endpoint, by the port's name as kube-proxy matches it.
        slices = await self._kube.list(
            ENDPOINTSLICES, namespace=target.namespace, label_selector=f"kubernetes.io/service-name={target.service}"
        )
        name = port.get("name") or ""
        out: list[tuple[str, int]] = []
        for es in slices.get("items") or []:
            if es.get("addressType") not in ("IPv4", "IPv6"):
                continue  # never resolve names from a slice: an FQDN could point anywhere the operator can reach
            numbers = [p.get("port") for p in es.get("ports") or [] if (p.get("name") or "") == name]
            if not numbers or numbers[0] is None:
                continue
            for endpoint in es.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                out.extend((str(address), int(numbers[0])) for address in endpoint.get("addresses") or [])
        return out
