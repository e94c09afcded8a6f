"""Wiring only: shared informers, controllers, host connections, the embedded tunnel, leader election, probes.

Start-up order matters:
1. probes and metrics answer at once (/healthz is the event loop; /readyz says why it is not ready yet);
2. leader election: only the leader runs anything that acts, so two replicas never both touch a Docker host;
3. the tunnel server (agents reconnect to the new leader at once; until host tokens are loaded they are told
   503 "retry", never 401), then informers; once the caches are synced the host tokens are loaded and the
   controllers' workers start.
Losing the Lease stops everything at once and the process exits non-zero (controller-runtime does the same):
a fresh start is the only safe way back to a consistent picture.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from dockyard_mux import Stream
from dockyard_operator.access.errors import AccessError
from dockyard_operator.access.publishing import publish_ca_bundle
from dockyard_operator.access.server import AccessServer
from dockyard_operator.api.common import LabelSelector
from dockyard_operator.api.dockerservice import SERVICE_OWNER_LABEL
from dockyard_operator.containers import indexing
from dockyard_operator.containers.reconciler import ContainerReconciler
from dockyard_operator.cronjobs.reconciler import CronJobReconciler
from dockyard_operator.deployments import revisions
from dockyard_operator.deployments.reconciler import BY_DEPLOYMENT, DeploymentReconciler
from dockyard_operator.dockerapi.client import DockerClient
from dockyard_operator.hosts.connections import HostConnections
from dockyard_operator.hosts.reconciler import HostReconciler
from dockyard_operator.hosts.tokens import HostTokenAuthenticator
from dockyard_operator.informer.store import JSON, object_key
from dockyard_operator.jobs.reconciler import JobReconciler
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.electing import LeaderElector
from dockyard_operator.kube.errors import KubeError
from dockyard_operator.kube.leader_label import PodLeaderLabel
from dockyard_operator.kube.recording import EventRecorder
from dockyard_operator.kube.resources import (
    CONFIGMAPS,
    CONTROLLERREVISIONS,
    DOCKERCONTAINERS,
    DOCKERCRONJOBS,
    DOCKERDEPLOYMENTS,
    DOCKERHOSTS,
    DOCKERJOBS,
    DOCKERSERVICES,
    ENDPOINTSLICES,
    NAMESPACES,
    SECRETS,
    SERVICES,
)
from dockyard_operator.kube.uninstall import UninstallGuard
from dockyard_operator.metrics import Metrics
from dockyard_operator.runtime.consistency import WriteTracker
from dockyard_operator.runtime.controller import Controller, Owns, Watch, controller_ref, intent_changed
from dockyard_operator.runtime.fetching import FetchedObjects
from dockyard_operator.runtime.informers import SharedInformers, Source
from dockyard_operator.runtime.manager import Manager
from dockyard_operator.services import backends as service_backends
from dockyard_operator.services import imports
from dockyard_operator.services.addresses import data_plane_address
from dockyard_operator.services.dataplane import DataPlane, DataPlaneConfig
from dockyard_operator.services.errors import ServiceAddressError
from dockyard_operator.services.importing import ImportConnector, ImportSync
from dockyard_operator.services.reconciler import ServiceReconciler
from dockyard_operator.serving import ProbeServer
from dockyard_operator.settings import OperatorSettings
from dockyard_operator.stats.polling import StatsPoller
from dockyard_operator.tunneling import EmbeddedTunnel
from dockyard_tunnel.container_stats import StatsDocument
from dockyard_tunnel.errors import DialError
from dockyard_tunnel.server.streams import dial_tcp

log = structlog.get_logger("dockyard.operator")


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _labels_changed(event: str, obj: JSON, old: JSON | None) -> bool:
    """A namespace's labels (host selection, operator classes) or its import allowance changed."""
    before = (old or {}).get("metadata") or {}
    return (
        event != "MODIFIED"
        or obj["metadata"].get("labels") != before.get("labels")
        or _allowance(obj["metadata"]) != _allowance(before)
    )


def _allowance(meta: JSON) -> str | None:
    return (meta.get("annotations") or {}).get(imports.ALLOW_ANNOTATION)


_BY_PLACEMENT = "placement"


def _placement_of(obj: JSON) -> list[str]:
    """Index of DockerDeployments: "selector" when the template places replicas by hostSelector."""
    template = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return ["selector"] if template.get("hostSelector") is not None else []


def _deployment_of(obj: JSON) -> list[str]:
    """Index of ControllerRevisions: the DockerDeployment (namespace/name) they belong to."""
    meta = obj.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(revisions.DEPLOYMENT_LABEL)
    return [f"{meta.get('namespace')}/{owner}"] if owner else []


#: Seconds a leader's Pod lives on after removing its leader label at shutdown (see run()'s cleanup).
LABEL_LINGER = 3.0
#: Seconds spent at shutdown sending Events still queued (a lost Event is acceptable, a hung shutdown is not).
EVENT_DRAIN_TIMEOUT = 3.0
#: Seconds a DockerDeployment waits after a replica changes before it looks (coalesces a rollout's bursts; a
#: rollout step is seconds long, so this costs it little and saves most of its status writes).
REPLICA_CHANGE_DELAY = 0.2
#: Seconds a host's status waits after a DockerContainer arrives on or leaves it (coalesces bursts).
HOST_COUNT_DELAY = 1.0
#: A burst of container changes on a host costs one listener update for its agent.
IMPORTS_DELAY = 0.2


def _placement_changes(event: str, obj: JSON, old: JSON | None) -> list[str]:
    """DockerHosts whose container count a DockerContainer event changes: the host it left and the one it is on."""
    now = None if event == "DELETED" else (obj.get("status") or {}).get("host")
    before = ((old or {}).get("status") or {}).get("host")
    return [h for h in {now, before} if h] if now != before or event != "MODIFIED" else []


class Operator:
    """One operator process. `run()` until `stop` is set; raises LeadershipLostError if the Lease is lost."""

    def __init__(self, *, kube: KubeClient, settings: OperatorSettings, run_dir: Path | None = None) -> None:
        self.kube = kube
        self.settings = settings
        self.identity = settings.identity or default_identity()
        self.metrics = Metrics()
        self.started = asyncio.Event()
        self.authenticator = HostTokenAuthenticator()
        self.hosts = HostConnections(
            settings=settings.hosts,
            call_timeout=settings.reconcile.docker_call_timeout,
            on_event=self._docker_event,
            on_change=self._host_changed,
            on_docker_call=self.metrics.count_docker_call,
        )
        kube.on_request = self.metrics.count_kube_request
        self.tunnel = (
            EmbeddedTunnel(
                kube=kube,
                settings=settings.tunnel,
                namespace=settings.operator_namespace,
                hosts=self.hosts,
                authenticator=self.authenticator,
                run_dir=run_dir,
                on_stream=self._agent_stream,
            )
            if settings.tunnel.enabled
            else None
        )
        self.metrics.add_host_collector(self.tunnel.stats if self.tunnel is not None else self._direct_stats)
        # Container stats need an agent (the `stats` stream): hosts reached directly on a Docker socket have none.
        self.stats = StatsPoller(
            registry=lambda: self.tunnel.server.registry if self.tunnel and self.tunnel.server else None,
            settings=settings.stats,
            on_poll=self.metrics.observe_stats_poll,
        )

        self.access = (
            AccessServer(
                kube=kube,
                settings=settings.access,
                lookup=lambda namespace, name: self._containers.get(f"{namespace}/{name}"),
                docker_for=self._reachable_docker,
                dial=self._dial,
                tunnel_host=lambda host: bool((c := self.hosts.get(host)) and c.endpoint.tunnel),
            )
            if settings.access.enabled
            else None
        )

        informers = SharedInformers(kube=kube, namespaces=settings.namespaces, settings=settings.watch)
        containers = informers.source(DOCKERCONTAINERS)
        dockerhosts = informers.source(DOCKERHOSTS)
        namespaces = informers.source(NAMESPACES)
        # Secrets and ConfigMaps: metadata only. Content is fetched when a DockerContainer needs it.
        secrets = informers.source(SECRETS, metadata_only=True)
        config_maps = informers.source(CONFIGMAPS, metadata_only=True)
        containers.add_index(indexing.BY_HOST, indexing.hosts_of)
        containers.add_index(indexing.BY_SECRET, indexing.secrets_of)
        containers.add_index(indexing.BY_CONFIG_MAP, indexing.config_maps_of)
        containers.add_index(indexing.BY_NAMESPACE, indexing.namespace_of)
        containers.add_index(imports.BY_IMPORTED_NAMESPACE, imports.imported_namespaces)
        self._containers = containers.store
        self.metrics.add_container_collector(self._container_stats, self._placed_containers)
        self.metrics.add_agent_collector(self._container_stats, self._agent_sessions)
        deployments = informers.source(DOCKERDEPLOYMENTS)
        deployments.add_index(indexing.BY_NAMESPACE, indexing.namespace_of)
        deployments.add_index(_BY_PLACEMENT, _placement_of)
        # Only the ControllerRevisions of DockerDeployments (a label selector): not StatefulSets' or DaemonSets'.
        revision_source = informers.source(CONTROLLERREVISIONS, label_selector=revisions.DEPLOYMENT_LABEL)
        revision_source.add_index(BY_DEPLOYMENT, _deployment_of)
        recorder = self.recorder = EventRecorder(client=kube, instance=self.identity)

        container_tracker, host_tracker = WriteTracker(), WriteTracker()
        self.container_reconciler = ContainerReconciler(
            kube=kube,
            recorder=recorder,
            hosts=self.hosts,
            containers=containers.store,
            dockerhosts=dockerhosts.store,
            namespaces=namespaces.store,
            secrets=FetchedObjects(kube=kube, metadata=secrets),
            config_maps=FetchedObjects(kube=kube, metadata=config_maps),
            settings=settings.reconcile,
            tracker=container_tracker,
            operator_class=settings.operator_class,
        )
        self.host_reconciler = HostReconciler(
            kube=kube,
            recorder=recorder,
            hosts=self.hosts,
            dockerhosts=dockerhosts.store,
            placed_on=lambda host: [object_key(o) for o in indexing.placed_on(containers.store, host)],
            authenticator=self.authenticator,
            tunnel_socket=self.tunnel.socket_for if self.tunnel is not None else None,
            operator_namespace=settings.operator_namespace,
            operator_class=settings.operator_class,
            tracker=host_tracker,
            drain_timeout=settings.reconcile.host_drain_timeout,
            disconnect_agent=self.tunnel.disconnect if self.tunnel is not None else None,
        )

        def by(index: str):  # type: ignore[no-untyped-def]
            return lambda _event, obj, _old: indexing.keys(containers.store.by_index(index, object_key(obj)))

        self.manager = Manager(informers=informers, resync_period=settings.reconcile.resync_period)
        self.container_controller = self.manager.add(
            Controller(
                name="dockercontainer",
                kind="DockerContainer",
                for_=containers,
                reconcile=self.container_reconciler.reconcile,
                watches=[
                    Watch(
                        dockerhosts,
                        lambda _e, obj, _o: indexing.on_host(containers.store, obj["metadata"]["name"]),
                        intent_changed,
                    ),
                    Watch(secrets, by(indexing.BY_SECRET)),
                    Watch(config_maps, by(indexing.BY_CONFIG_MAP)),
                    Watch(
                        namespaces,
                        lambda _e, obj, _o: indexing.keys(
                            containers.store.by_index(indexing.BY_NAMESPACE, obj["metadata"]["name"])
                        ),
                        _labels_changed,
                    ),
                    # A namespace granting or revoking imports: the containers (elsewhere) that import from it.
                    Watch(
                        namespaces,
                        lambda _e, obj, _o: indexing.keys(
                            containers.store.by_index(imports.BY_IMPORTED_NAMESPACE, obj["metadata"]["name"])
                        ),
                        _labels_changed,
                    ),
                ],
                workers=settings.reconcile.workers,
                metrics=self.metrics,
                tracker=container_tracker,
            )
        )

        def placing_by_selector(_event: str, _host: JSON, _old: JSON | None) -> list[str]:
            return indexing.keys(deployments.store.by_index(_BY_PLACEMENT, "selector"))

        def adopting(_event: str, container: JSON, _old: JSON | None) -> list[str]:
            if controller_ref(container) is not None:
                return []  # owned ones reach their owner through Owns
            namespace = container["metadata"]["namespace"]
            return indexing.keys(deployments.store.by_index(indexing.BY_NAMESPACE, namespace))

        deployment_tracker = WriteTracker()
        self.deployment_controller = self.manager.add(
            Controller(
                name="dockerdeployment",
                kind="DockerDeployment",
                for_=deployments,
                reconcile=self._reconcile_deployment,
                owns=[Owns(containers, delay=REPLICA_CHANGE_DELAY)],
                watches=[
                    # A host appearing, connecting or leaving may let replicas be placed (hostSelector templates).
                    Watch(dockerhosts, placing_by_selector, intent_changed),
                    # An orphan DockerContainer may be adopted by a deployment of its namespace.
                    Watch(containers, adopting),
                ],
                workers=2,
                metrics=self.metrics,
                tracker=deployment_tracker,
            )
        )
        self.deployment_reconciler = DeploymentReconciler(
            kube=kube,
            recorder=recorder,
            deployments=deployments.store,
            containers=containers.store,
            revision_store=revision_source.store,
            namespaces=namespaces.store,
            host_views=self.container_reconciler.host_views,
            expectations=self.deployment_controller.expectations,
            tracker=deployment_tracker,
            operator_class=settings.operator_class,
        )
        jobs = informers.source(DOCKERJOBS)
        job_tracker = WriteTracker()
        self.job_controller = self.manager.add(
            Controller(
                name="dockerjob",
                kind="DockerJob",
                for_=jobs,
                reconcile=self._reconcile_job,
                owns=[Owns(containers, delay=REPLICA_CHANGE_DELAY)],
                workers=2,
                metrics=self.metrics,
                tracker=job_tracker,
            )
        )
        self.job_reconciler = JobReconciler(
            kube=kube,
            recorder=recorder,
            jobs=jobs.store,
            containers=containers.store,
            namespaces=namespaces.store,
            docker_for=self._reachable_docker,
            expectations=self.job_controller.expectations,
            tracker=job_tracker,
            operator_class=settings.operator_class,
        )
        cronjobs = informers.source(DOCKERCRONJOBS)
        cronjob_tracker = WriteTracker()
        self.cronjob_controller = self.manager.add(
            Controller(
                name="dockercronjob",
                kind="DockerCronJob",
                for_=cronjobs,
                reconcile=self._reconcile_cronjob,
                owns=[Owns(jobs)],
                workers=1,
                metrics=self.metrics,
                tracker=cronjob_tracker,
            )
        )
        self.cronjob_reconciler = CronJobReconciler(
            kube=kube,
            recorder=recorder,
            cronjobs=cronjobs.store,
            jobs=jobs.store,
            namespaces=namespaces.store,
            expectations=self.cronjob_controller.expectations,
            tracker=cronjob_tracker,
            operator_class=settings.operator_class,
        )
        self._setup_services(informers, containers, namespaces, recorder)
        self._setup_imports(dockerhosts, containers, namespaces)
        self.host_controller = self.manager.add(
            Controller(
                name="dockerhost",
                kind="DockerHost",
                for_=dockerhosts,
                reconcile=self.host_reconciler.reconcile,
                # The count in a host's status is a summary: a burst of 100 placements is one status write.
                watches=[Watch(containers, _placement_changes, delay=HOST_COUNT_DELAY)],
                workers=1,
                metrics=self.metrics,
                tracker=host_tracker,
            )
        )

    def _setup_services(
        self, informers: SharedInformers, containers: Source, namespaces: Source, recorder: EventRecorder
    ) -> None:
        """DockerServices: the data plane, the Services and EndpointSlices we own, and the controller."""
        try:
            address: str | None = data_plane_address(self.settings.services.address)
            self.service_address_error = ""
        except ServiceAddressError as exc:
            address, self.service_address_error = None, str(exc)
            log.warning("DockerServices cannot be served", reason=str(exc))
        self.dataplane = DataPlane(
            DataPlaneConfig(listen_host=address or "127.0.0.1", dial_timeout=self.settings.services.dial_timeout),
            dial=self._dial,
            metrics=self.metrics,
        )
        docker_services = informers.source(DOCKERSERVICES)
        docker_services.add_index(indexing.BY_NAMESPACE, indexing.namespace_of)
        # Only the Services and EndpointSlices we made (a label selector), not every Service of the cluster.
        kube_services = informers.source(SERVICES, label_selector=SERVICE_OWNER_LABEL)
        slices = informers.source(ENDPOINTSLICES, label_selector=SERVICE_OWNER_LABEL)

        def selecting(_event: str, obj: JSON, old: JSON | None) -> list[str]:
            if service_backends.view(obj) == service_backends.view(old):
                return []  # nothing a service looks at changed (a restart count, a drift)
            labels = [((o or {}).get("metadata") or {}).get("labels") or {} for o in (obj, old)]
            keys = []
            for svc in docker_services.store.by_index(indexing.BY_NAMESPACE, obj["metadata"]["namespace"]):
                try:
                    selector = LabelSelector.model_validate((svc.get("spec") or {}).get("selector") or {})
                except ValueError:
                    continue
                if any(selector.matches(lab) for lab in labels):
                    keys.append(object_key(svc))
            return keys

        tracker = WriteTracker()
        self.service_controller = self.manager.add(
            Controller(
                name="dockerservice",
                kind="DockerService",
                for_=docker_services,
                reconcile=self._reconcile_service,
                owns=[Owns(kube_services), Owns(slices)],
                watches=[
                    Watch(containers, selecting),
                    # Its namespace changing operator class: served (or not) from now on.
                    Watch(
                        namespaces,
                        lambda _e, obj, _o: indexing.keys(
                            docker_services.store.by_index(indexing.BY_NAMESPACE, obj["metadata"]["name"])
                        ),
                        _labels_changed,
                    ),
                ],
                workers=2,
                metrics=self.metrics,
                tracker=tracker,
            )
        )
        self.service_reconciler = ServiceReconciler(
            kube=self.kube,
            recorder=recorder,
            services=docker_services.store,
            containers=containers.store,
            namespaces=namespaces.store,
            kube_services=kube_services.store,
            slices=slices.store,
            dataplane=self.dataplane,
            address=address,
            address_error=self.service_address_error,
            tracker=tracker,
            operator_class=self.settings.operator_class,
        )

    def _setup_imports(self, dockerhosts: Source, containers: Source, namespaces: Source) -> None:
        """Service imports: each host's agent listeners (a controller keyed by host) and the imported connections."""
        self.import_connector = ImportConnector(
            kube=self.kube, containers=containers.store, namespaces=namespaces.store
        )
        self.import_sync = ImportSync(
            containers=containers.store,
            namespaces=namespaces.store,
            registry=lambda: self.tunnel.server.registry if self.tunnel and self.tunnel.server else None,
            docker_for=self._reachable_docker,
            gateways=self.container_reconciler.gateways,
            on_failures_changed=self._import_failures_changed,
        )
        self.container_reconciler.import_failures = self.import_sync.failures

        def host_of(_event: str, obj: JSON, old: JSON | None) -> list[str]:
            hosts = {((o or {}).get("status") or {}).get("host") for o in (obj, old)}
            if all(not imports.declared(o) for o in (obj, old) if o is not None):
                return []  # no imports before or after: nothing for the listeners
            return [h for h in hosts if h]

        def all_hosts(_event: str, _obj: JSON, _old: JSON | None) -> list[str]:
            return list(self.hosts.names())

        self.import_controller = self.manager.add(
            Controller(
                name="serviceimports",
                kind="DockerHost",
                for_=dockerhosts,
                reconcile=self.import_sync.sync,
                watches=[
                    Watch(containers, host_of, delay=IMPORTS_DELAY),
                    Watch(namespaces, all_hosts, _labels_changed, delay=IMPORTS_DELAY),
                ],
                workers=1,
                metrics=self.metrics,
            )
        )

    def _import_failures_changed(self, host: str) -> None:
        """The agent listens on more or fewer import ports than before: its importers' conditions say so."""
        for obj in indexing.placed_on(self._containers, host):
            if imports.declared(obj):
                self.container_controller.enqueue(object_key(obj))

    async def _agent_stream(self, host: str, stream: Stream) -> None:
        await self.import_connector.handle(host, stream)

    async def _dial(self, host: str, ip: str, port: int, container: str | None) -> Stream:
        server = self.tunnel.server if self.tunnel is not None else None
        if server is None:
            raise DialError(f"{host}: DockerServices need the tunnel (the operator runs without one)")
        return await dial_tcp(
            server.registry,
            host=host,
            ip=ip,
            port=port,
            timeout=self.settings.services.dial_timeout,
            container=container,
        )

    async def _reconcile_service(self, key: str) -> float | None:
        return await self.service_reconciler.reconcile(key)

    async def _reconcile_deployment(self, key: str) -> float | None:
        return await self.deployment_reconciler.reconcile(key)

    async def _reconcile_job(self, key: str) -> float | None:
        return await self.job_reconciler.reconcile(key)

    async def _reconcile_cronjob(self, key: str) -> float | None:
        return await self.cronjob_reconciler.reconcile(key)

    def _reachable_docker(self, host: str) -> DockerClient | None:
        connection = self.hosts.get(host)
        return connection.client if connection is not None and connection.state.reachable else None

    # -- external events --------------------------------------------------------------------------------------

    def _docker_event(self, host: str, key: str) -> None:
        self.metrics.count_docker_event(host)
        self.container_controller.enqueue(key)

    def _host_changed(self, host: str) -> None:
        """A host connected, disconnected or answered again: the host and every container it may concern."""
        self.host_controller.enqueue(host)
        self.import_controller.enqueue(host)  # a new session gets its import listeners again
        for key in indexing.on_host(self._containers, host):
            self.container_controller.enqueue(key)

    def _direct_stats(self) -> list[tuple[str, bool, int, int, int, float | None]]:
        out: list[tuple[str, bool, int, int, int, float | None]] = []
        for name in self.hosts.names():
            conn = self.hosts.get(name)
            if conn is not None:
                out.append((name, conn.state.reachable, 0, 0, 0, None))
        return out

    def _container_stats(self) -> list[tuple[str, StatsDocument]]:
        return [(snap.host, snap.document) for snap in self.stats.snapshots()]

    def _placed_containers(self) -> list[tuple[str, str, str, int, str | None]]:
        out = []
        for obj in self._containers.values():
            status = obj.get("status") or {}
            if status.get("host"):
                meta = obj["metadata"]
                out.append(
                    (meta["namespace"], meta["name"], status["host"], int(status.get("restartCount") or 0),
                     status.get("health"))
                )  # fmt: skip
        return out

    def _agent_sessions(self) -> list[tuple[str, float, int]]:
        registry = self.tunnel.server.registry if self.tunnel and self.tunnel.server else None
        if registry is None:
            return []
        out = []
        for host in registry.hosts():
            info = registry.info(host)
            if info is not None and registry.get(host) is not None:
                out.append((host, info.connected_at, registry.connects(host)))
        return out

    def ready(self) -> str | None:
        if self.settings.pod_name and self.settings.leader_election and not self.started.is_set():
            # In a cluster a replica waiting for the Lease is ready: the leader label, not readiness, routes the
            # tunnel to the leader (kube/leader_label.py says why).
            return None
        if not self.started.is_set():
            return "waiting for leadership and informer sync"
        return None

    # -- run --------------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        probes = ProbeServer(address=self.settings.metrics_address, metrics=self.metrics, ready=self.ready)
        await probes.start()
        self.probe_port = probes.port
        elector: LeaderElector | None = None
        label: PodLeaderLabel | None = None
        guard: UninstallGuard | None = None

        async def before_stopping() -> None:
            # An uninstall (our ServiceAccount marked for deletion) waits for the cleanup it has to finish.
            if guard is not None and await guard.uninstalling():
                await guard.drain()

        try:
            async with asyncio.TaskGroup() as group:
                # Raising from a task cancels the group's body wherever it waits (acquiring the Lease, informer
                # sync against a broken API server): SIGTERM is honoured at every stage.
                group.create_task(_raise_when(stop, before_stopping))
                if self.settings.pod_name:
                    # A container restarted in the leader's Pod (OOM, crash) must not keep attracting the tunnel
                    # while it waits for the Lease: our label goes before anything else.
                    await PodLeaderLabel(
                        client=self.kube, namespace=self.settings.operator_namespace, pod=self.settings.pod_name
                    ).release()
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
                if self.tunnel is not None:
                    await self.tunnel.start()
                if self.settings.pod_name:
                    # After the tunnel listens: the label is what sends agents here.
                    label = PodLeaderLabel(
                        client=self.kube, namespace=self.settings.operator_namespace, pod=self.settings.pod_name
                    )
                    await label.claim()
                    guard = UninstallGuard(client=self.kube, namespace=self.settings.operator_namespace)
                    try:
                        await guard.protect()
                    except KubeError as exc:
                        # Not fatal: only a later `kubectl delete -k` would then need docs/operator.md's manual step.
                        log.warning("could not keep our identity for uninstall", error=str(exc))
                self.manager.informers.start(group)
                await self.manager.informers.wait_synced()
                await self.host_reconciler.load_tokens()
                group.create_task(self.recorder.run())
                self.manager.start_controllers(group)
                group.create_task(self.stats.run())  # leader only, like the controllers
                log.info("caches synced; workers running", containers=len(self._containers))
                if self.access is not None:  # after the sync: it answers from the cache
                    try:
                        await self.access.start()
                    except (AccessError, OSError) as exc:
                        # Reconciling must not stop because logs/exec cannot be served (e.g. an API server
                        # without the aggregation layer): say so loudly and run without them.
                        log.error("access API not served: logs, exec and port-forward are unavailable", error=str(exc))
                    else:
                        await publish_ca_bundle(self.kube, self.access)
                self.started.set()
                await asyncio.Event().wait()  # until _raise_when(stop) unwinds the group
        except* _Stopping:
            pass
        finally:
            unlabelled = time.monotonic()
            if label is not None:
                # First: agents that reconnect as the tunnel closes must not be sent back to us.
                await label.release()
            self.started.clear()
            self.manager.shut_down()
            if self.access is not None:
                await self.access.stop()
            await self.recorder.drain(timeout=EVENT_DRAIN_TIMEOUT)
            await self.dataplane.close()
            await self.hosts.close()
            if self.tunnel is not None:
                await self.tunnel.stop()
            # Not after losing the Lease: a new leader may already have put the finalizers back.
            if guard is not None and (guard.uninstall_seen or elector is None or elector.is_leader.is_set()):
                await guard.release()
            if elector is not None:
                with contextlib.suppress(Exception):
                    await elector.release()
            self.metrics.leader.labels("dockyard-operator").set(0)
            if label is not None:
                # Until kube-proxy has dropped our Pod from the tunnel Service (about a second), a new connection
                # may still be sent here: while the Pod lives it is refused at once, and the agent retries within
                # a second; once the Pod is gone it would vanish into an unanswered address for the agent's whole
                # connect timeout. So the leader's Pod outlives its label by LABEL_LINGER.
                await asyncio.sleep(max(0.0, LABEL_LINGER - (time.monotonic() - unlabelled)))
            await probes.stop()


class _Stopping(Exception):
    """Internal: unwinds the TaskGroup when stop is requested."""


async def _raise_when(stop: asyncio.Event, before: Callable[[], Awaitable[None]]) -> None:
    await stop.wait()
    await before()
    raise _Stopping()
