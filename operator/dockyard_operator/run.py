"""Wiring only: informers, queues, reconcilers, host connections, the tunnel server, leader election, probes.

Start-up order matters:
1. probes and metrics answer at once (/healthz is the event loop; /readyz says why it is not ready yet);
2. leader election: only the leader runs anything that acts, so two replicas never both touch a Docker host;
3. the tunnel server (agents connect to the leader), informers, then the workers once the caches are synced.
Losing the Lease stops everything at once and the process exits non-zero (controller-runtime does the same):
a fresh start is the only safe way back to a consistent picture.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from dockyard_operator.containers.reconciler import ContainerReconciler, referencing_keys
from dockyard_operator.hosts.connections import HostConnections
from dockyard_operator.hosts.reconciler import HostReconciler
from dockyard_operator.hosts.tokens import HostTokenAuthenticator
from dockyard_operator.informer.informing import Informer
from dockyard_operator.informer.store import JSON, object_key
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.electing import LeaderElector
from dockyard_operator.kube.recording import EventRecorder
from dockyard_operator.kube.resources import CONFIGMAPS, DOCKERCONTAINERS, DOCKERHOSTS, NAMESPACES, SECRETS
from dockyard_operator.metrics import Metrics
from dockyard_operator.serving import ProbeServer
from dockyard_operator.settings import OperatorSettings
from dockyard_operator.workqueue.clocks import LoopClock
from dockyard_operator.workqueue.config import QueueConfig
from dockyard_operator.workqueue.ratelimiting import RateLimitingQueue, new_queue
from dockyard_operator.workqueue.workers import run_workers
from dockyard_tunnel.config import ServerConfig
from dockyard_tunnel.dockerapi.bridging import DockerBridges
from dockyard_tunnel.server.app import TunnelServer
from dockyard_tunnel.server.registry import HostInfo, SessionRegistry

log = structlog.get_logger("dockyard.operator")

#: Where the operator publishes the tunnel's URL and CA pin for `dockyard host join`.
TUNNEL_INFO_CONFIGMAP = "dockyard-tunnel"
#: Where the tunnel's CA and serving certificate are kept across restarts and replicas.
TUNNEL_TLS_SECRET = "dockyard-tunnel-tls"  # noqa: S105 — a Secret name, not a credential
_TLS_FILES = ("ca.crt", "ca.key", "server.crt", "server.key")


def _write_tls_files(directory: Path, data: dict[str, bytes]) -> None:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in _TLS_FILES:
        if name in data:
            path = directory / name
            path.unlink(missing_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data[name])


def _read_tls_files(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in _TLS_FILES if (directory / name).exists()}


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Operator:
    """One operator process. `run()` until `stop` is set; raises LeadershipLostError if the Lease is lost."""

    def __init__(self, *, kube: KubeClient, settings: OperatorSettings, run_dir: Path | None = None) -> None:
        self.kube = kube
        self.settings = settings
        self.identity = settings.identity or default_identity()
        self.metrics = Metrics()
        self._run_dir = run_dir
        self.started = asyncio.Event()
        self.tunnel: TunnelServer | None = None
        self.bridges: DockerBridges | None = None
        self.authenticator = HostTokenAuthenticator()
        clock = LoopClock()
        qcfg = QueueConfig()
        self.container_queue: RateLimitingQueue[str] = new_queue(
            config=qcfg, clock=clock, observer=self.metrics.queue_observer("dockercontainer")
        )
        self.host_queue: RateLimitingQueue[str] = new_queue(
            config=qcfg, clock=clock, observer=self.metrics.queue_observer("dockerhost")
        )
        self.hosts = HostConnections(
            settings=settings.hosts,
            call_timeout=settings.reconcile.docker_call_timeout,
            on_event=self._docker_event,
            on_change=self._host_changed,
            on_docker_call=self.metrics.count_docker_call,
        )
        kube.on_request = self.metrics.count_kube_request
        ws = settings.watch
        namespaces: list[str | None] = list(settings.namespaces) or [None]
        self.container_informers = [
            Informer(client=kube, resource=DOCKERCONTAINERS, namespace=ns, settings=ws) for ns in namespaces
        ]
        self.secret_informers = [
            Informer(client=kube, resource=SECRETS, namespace=ns, settings=ws) for ns in namespaces
        ]
        self.configmap_informers = [
            Informer(client=kube, resource=CONFIGMAPS, namespace=ns, settings=ws) for ns in namespaces
        ]
        self.host_informer = Informer(client=kube, resource=DOCKERHOSTS, settings=ws)
        self.namespace_informer = Informer(client=kube, resource=NAMESPACES, settings=ws)
        self.containers = _MergedStore([i.store for i in self.container_informers])
        self.recorder = EventRecorder(client=kube, instance=self.identity)
        self.container_reconciler = ContainerReconciler(
            kube=kube,
            recorder=self.recorder,
            hosts=self.hosts,
            containers=self.containers,  # type: ignore[arg-type]
            dockerhosts=self.host_informer.store,
            secrets=_MergedStore([i.store for i in self.secret_informers]),  # type: ignore[arg-type]
            configmaps=_MergedStore([i.store for i in self.configmap_informers]),  # type: ignore[arg-type]
            namespaces=self.namespace_informer.store,
            settings=settings.reconcile,
        )
        self.host_reconciler: HostReconciler | None = None
        # Last seen "intent" (everything but status) per object, to tell our own status writes from changes.
        self._seen_containers: dict[str, str] = {}
        self._seen_hosts: dict[str, str] = {}
        self._placed: dict[str, str] = {}  # container key -> status.host, for DockerHost container counts
        self._wire_handlers()
        self.metrics.add_host_collector(self._host_stats)

    # ------------------------------------------------------------------------------------------ plumbing

    def _enqueue_container(self, key: str) -> None:
        self.container_queue.add(key)

    def _enqueue_host(self, name: str) -> None:
        self.host_queue.add(name)

    def _docker_event(self, key: str) -> None:
        self._enqueue_container(key)

    def _containers_of_host(self, host: str) -> list[str]:
        keys = []
        for obj in self.containers.values():
            status_host = (obj.get("status") or {}).get("host")
            spec = obj.get("spec") or {}
            ref = (spec.get("hostRef") or {}).get("name")
            unplaced = status_host is None and spec.get("hostSelector") is not None
            if host in (status_host, ref) or unplaced:
                keys.append(object_key(obj))
        return keys

    def _host_changed(self, host: str) -> None:
        self._enqueue_host(host)
        for key in self._containers_of_host(host):
            self._enqueue_container(key)

    def _container_event(self, kind: str, obj: JSON) -> None:
        key = object_key(obj)
        caught_up = self.container_reconciler.observe(kind, obj)
        signature = _intent(obj)
        if kind == "DELETED":
            self._seen_containers.pop(key, None)
            self._enqueue_container(key)
        elif caught_up or self._seen_containers.get(key) != signature:
            self._seen_containers[key] = signature
            self._enqueue_container(key)
        # A status-only change is our own write (we are the only status writer): reconciling again would
        # only re-read Docker to find what we just wrote.

    def _host_event(self, kind: str, obj: JSON) -> None:
        name = obj["metadata"]["name"]
        signature = _intent(obj)
        if kind == "DELETED":
            self._seen_hosts.pop(name, None)
            self._host_changed(name)
        elif self._seen_hosts.get(name) != signature:
            self._seen_hosts[name] = signature
            self._host_changed(name)  # spec or labels changed: the host and every container placed on it
        # Status-only changes of a DockerHost wake nothing: they are our own writes, and waking the host's
        # containers on each would turn every container-count update into a full re-check of the host.

    def _wire_handlers(self) -> None:
        for informer in self.container_informers:
            informer.add_handler(self._container_event)
            # A container appearing or leaving changes its host's container count.
            informer.add_handler(self._container_host_count)
        self.host_informer.add_handler(self._host_event)

        def fan_out(kind: str) -> Callable[[str, JSON], None]:
            def handler(_event: str, obj: JSON) -> None:
                meta = obj["metadata"]
                ref = {kind: meta["name"]}
                for key in referencing_keys(self.containers, meta["namespace"], **ref):  # type: ignore[arg-type]
                    self._enqueue_container(key)

            return handler

        for informer in self.secret_informers:
            informer.add_handler(fan_out("secret"))
        for informer in self.configmap_informers:
            informer.add_handler(fan_out("config_map"))

        def namespace_changed(_event: str, obj: JSON) -> None:
            name = obj["metadata"]["name"]
            for c in self.containers.values():
                if c["metadata"].get("namespace") == name:
                    self._enqueue_container(object_key(c))

        self.namespace_informer.add_handler(namespace_changed)

    def _container_host_count(self, kind: str, obj: JSON) -> None:
        """A container placed on, or leaving, a host changes that host's status.containers."""
        key = object_key(obj)
        host = None if kind == "DELETED" else (obj.get("status") or {}).get("host")
        before = self._placed.pop(key, None)
        if host:
            self._placed[key] = host
        if before != host:
            for name in (before, host):
                if name:
                    self._enqueue_host(name)

    def _host_stats(self) -> list[tuple[str, bool, int, int, int, float | None]]:
        out = []
        for name in self.hosts.names():
            conn = self.hosts.get(name)
            if conn is None:
                continue
            session = self.tunnel.registry.get(name) if self.tunnel is not None else None
            if session is not None:
                out.append(
                    (
                        name,
                        conn.state.reachable,
                        session.bytes_sent,
                        session.bytes_received,
                        session.num_streams,
                        session.rtt,
                    )
                )
            else:
                out.append((name, conn.state.reachable, 0, 0, 0, None))
        return out

    def ready(self) -> str | None:
        if not self.started.is_set():
            return "waiting for leadership and informer sync"
        return None

    # ------------------------------------------------------------------------------------------- tunnel

    async def _on_agent_connect(self, info: HostInfo) -> None:
        await self.hosts.tunnel_connected(info.host, agent_version=info.hello.agent_version)

    async def _disconnect_agent(self, host: str) -> None:
        session = self.tunnel.registry.get(host) if self.tunnel is not None else None
        if session is not None:
            await session.close()

    async def _on_agent_disconnect(self, host: str, reason: str) -> None:
        await self.hosts.tunnel_disconnected(host, reason)

    async def _start_tunnel(self) -> None:
        t = self.settings.tunnel
        registry = SessionRegistry(on_connect=self._on_agent_connect, on_disconnect=self._on_agent_disconnect)
        tls_dir = t.tls_dir or Path(tempfile.mkdtemp(prefix="dockyard-tunnel-tls-"))
        if not t.insecure and t.cert_file is None:
            await self._restore_tunnel_ca(tls_dir)
        names = ["localhost", "127.0.0.1", "::1"]
        for host in (t.listen_host, urllib.parse.urlsplit(t.public_url).hostname or ""):
            if host and host not in ("0.0.0.0", "::") and host not in names:  # noqa: S104 — excluded, not bound
                names.append(host)
        config = ServerConfig(
            host=t.listen_host,
            port=t.listen_port,
            insecure=t.insecure,
            tls_dir=None if t.cert_file else tls_dir,
            cert_file=t.cert_file,
            key_file=t.key_file,
            server_names=tuple(names),
        )
        self.tunnel = TunnelServer(config, authenticator=self.authenticator, registry=registry)
        await self.tunnel.start()
        self.bridges = DockerBridges(registry, run_dir=self._run_dir)
        await self.bridges.start()
        log.info("tunnel server listening", url=self.tunnel.url, ca_cert_hash=self.tunnel.ca_cert_hash)
        if not t.insecure and t.cert_file is None:
            await self._save_tunnel_ca(tls_dir)
        await self._publish_tunnel_info()

    async def _restore_tunnel_ca(self, tls_dir: Path) -> None:
        """Agents pin the tunnel CA: it must survive restarts and move between replicas, so it lives in a
        Secret and is written into the TLS directory before the server starts (which then reuses it)."""
        try:
            secret = await self.kube.get(SECRETS, TUNNEL_TLS_SECRET, namespace=self.settings.operator_namespace)
        except kube_errors.NotFoundError:
            return
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        await asyncio.to_thread(_write_tls_files, tls_dir, data)

    async def _save_tunnel_ca(self, tls_dir: Path) -> None:
        files = await asyncio.to_thread(_read_tls_files, tls_dir)
        data = {k: base64.b64encode(v).decode() for k, v in files.items()}
        body: JSON = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": TUNNEL_TLS_SECRET, "namespace": self.settings.operator_namespace},
            "data": data,
        }
        try:
            await self.kube.create(SECRETS, body, namespace=self.settings.operator_namespace)
        except kube_errors.ConflictError:
            current = await self.kube.get(SECRETS, TUNNEL_TLS_SECRET, namespace=self.settings.operator_namespace)
            if current.get("data") != data:  # e.g. the serving certificate was renewed
                await self.kube.merge_patch(
                    SECRETS, TUNNEL_TLS_SECRET, {"data": data}, namespace=self.settings.operator_namespace
                )

    async def _publish_tunnel_info(self) -> None:
        """Publish what `dockyard host join` prints (URL, CA pin): public facts, so a ConfigMap, not a Secret."""
        assert self.tunnel is not None
        ca = self.tunnel.ca_file
        data = {
            "url": self.settings.tunnel.public_url or self.tunnel.url,
            "caCertHash": self.tunnel.ca_cert_hash or "",
            "ca.crt": await asyncio.to_thread(ca.read_text) if ca is not None else "",
        }
        body: JSON = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": TUNNEL_INFO_CONFIGMAP, "namespace": self.settings.operator_namespace},
            "data": data,
        }
        try:
            await self.kube.create(CONFIGMAPS, body, namespace=self.settings.operator_namespace)
        except kube_errors.ConflictError:
            await self.kube.merge_patch(
                CONFIGMAPS, TUNNEL_INFO_CONFIGMAP, {"data": data}, namespace=self.settings.operator_namespace
            )

    # ----------------------------------------------------------------------------------------------- run

    async def _reconcile_container(self, key: str) -> float | None:
        return await self._timed("dockercontainer", self.container_reconciler.reconcile, key)

    async def _reconcile_host(self, name: str) -> float | None:
        assert self.host_reconciler is not None
        return await self._timed("dockerhost", self.host_reconciler.reconcile, name)

    async def _timed(self, controller: str, fn: Any, key: str) -> float | None:
        started = time.perf_counter()
        try:
            result: float | None = await fn(key)
        except Exception:
            self.metrics.reconcile_total.labels(controller, "error").inc()
            self.metrics.reconcile_errors.labels(controller).inc()
            raise
        finally:
            self.metrics.reconcile_time.labels(controller).observe(time.perf_counter() - started)
        self.metrics.reconcile_total.labels(controller, "requeue_after" if result else "success").inc()
        return result

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reconcile.resync_period)
            for obj in self.containers.values():
                self._enqueue_container(object_key(obj))
            for name in self.host_informer.store.list_keys():
                self._enqueue_host(name)

    async def run(self, stop: asyncio.Event) -> None:
        probes = ProbeServer(address=self.settings.metrics_address, metrics=self.metrics, ready=self.ready)
        await probes.start()
        self.probe_port = probes.port
        elector: LeaderElector | None = None
        try:
            async with asyncio.TaskGroup() as group:
                # Raising from a task cancels the group's body wherever it waits (acquiring the Lease, informer
                # sync against a broken API server): SIGTERM is honoured at every stage.
                group.create_task(_raise_when(stop))
                if self.settings.leader_election:
                    elector = LeaderElector(
                        client=self.kube,
                        namespace=self.settings.operator_namespace,
                        name="dockyard-operator",
                        identity=self.identity,
                        settings=self.settings.election,
                    )
                    await elector.acquire()
                    self.metrics.leader.labels("dockyard-operator").set(1)
                    group.create_task(elector.hold())
                if self.settings.tunnel.enabled:
                    await self._start_tunnel()
                assert self.bridges is not None or not self.settings.tunnel.enabled
                self.host_reconciler = HostReconciler(
                    kube=self.kube,
                    hosts=self.hosts,
                    dockerhosts=self.host_informer.store,
                    count_containers=self.container_reconciler.host_load,
                    authenticator=self.authenticator,
                    tunnel_socket=self.bridges.socket_for if self.bridges is not None else None,
                    operator_namespace=self.settings.operator_namespace,
                    disconnect_agent=self._disconnect_agent,
                )
                informers = [
                    self.host_informer,
                    self.namespace_informer,
                    *self.secret_informers,
                    *self.configmap_informers,
                    *self.container_informers,
                ]
                for informer in informers:
                    group.create_task(informer.run())
                for informer in informers:
                    await informer.synced.wait()
                log.info("caches synced; starting workers", containers=len(self.containers))
                workers = self.settings.reconcile.workers
                group.create_task(run_workers(self.host_queue, self._reconcile_host, workers=1))
                group.create_task(run_workers(self.container_queue, self._reconcile_container, workers=workers))
                group.create_task(self._resync())
                self.started.set()
                await asyncio.Event().wait()  # until _raise_when(stop) unwinds the group
        except* _Stopping:
            pass
        finally:
            self.started.clear()
            self.container_queue.shut_down()
            self.host_queue.shut_down()
            await self.hosts.close()
            if self.bridges is not None:
                await self.bridges.stop()
            if self.tunnel is not None:
                await self.tunnel.stop()
            if elector is not None:
                with contextlib.suppress(Exception):
                    await elector.release()
            self.metrics.leader.labels("dockyard-operator").set(0)
            await probes.stop()


def _intent(obj: JSON) -> str:
    """What a user or another controller can change: the whole object but its status and bookkeeping."""
    meta = obj.get("metadata") or {}
    relevant = {
        "spec": obj.get("spec"),
        "generation": meta.get("generation"),
        "labels": meta.get("labels"),
        "annotations": meta.get("annotations"),
        "finalizers": meta.get("finalizers"),
        "deletionTimestamp": meta.get("deletionTimestamp"),
    }
    return json.dumps(relevant, sort_keys=True, separators=(",", ":"))


class _Stopping(Exception):
    """Internal: unwinds the TaskGroup when stop is requested."""


async def _raise_when(stop: asyncio.Event) -> None:
    await stop.wait()
    raise _Stopping()


class _MergedStore:
    """Read-only view over several informer stores (one per watched namespace)."""

    def __init__(self, stores: list[Any]) -> None:
        self._stores = stores

    def get(self, key: str) -> JSON | None:
        for store in self._stores:
            obj: JSON | None = store.get(key)
            if obj is not None:
                return obj
        return None

    def list_keys(self) -> list[str]:
        return [k for s in self._stores for k in s.list_keys()]

    def values(self) -> list[JSON]:
        return [v for s in self._stores for v in s.values()]

    def __len__(self) -> int:
        return sum(len(s) for s in self._stores)
