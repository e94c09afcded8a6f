"""Prometheus metrics. Names follow controller-runtime and client-go's workqueue where a counterpart exists,
so dashboards built for Go operators work unchanged; Dockyard-specific series are prefixed `dockyard_`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from dockyard_tunnel.container_stats import StatsDocument

HostStatsSource = Callable[[], Iterable[tuple[str, bool, int, int, int, float | None]]]
"""Yields (host, reachable, bytes_sent, bytes_received, open_streams, rtt_seconds) at scrape time."""

StatsSource = Callable[[], Iterable[tuple[str, StatsDocument]]]
"""Yields (host, the latest stats document of its agent) at scrape time."""

ObjectSource = Callable[[], Iterable[tuple[str, str, str, int, str | None]]]
"""Yields (namespace, name, host, restartCount, health) of each placed DockerContainer, from the informer cache."""

SessionSource = Callable[[], Iterable[tuple[str, float, int]]]
"""Yields (host, session start in seconds since the epoch, sessions since the operator started) per connected
host."""

#: Health states exported as dockyard_container_health_status{status=...} (Docker's three).
HEALTH_STATES = ("starting", "healthy", "unhealthy")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconcile_total = Counter(
            "controller_runtime_reconcile_total",
            "Reconciles per controller and result (success, error, requeue_after).",
            ["controller", "result"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            "controller_runtime_reconcile_errors_total", "Reconciles that raised.", ["controller"], registry=r
        )
        self.reconcile_time = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Time per reconcile.",
            ["controller"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.queue_depth = Gauge("workqueue_depth", "Keys waiting in the work queue.", ["name"], registry=r)
        self.queue_adds = Counter("workqueue_adds_total", "Keys added to the work queue.", ["name"], registry=r)
        self.queue_retries = Counter("workqueue_retries_total", "Rate-limited re-adds.", ["name"], registry=r)
        self.queue_wait = Histogram(
            "workqueue_queue_duration_seconds",
            "Time a key waited in the queue before a worker took it.",
            ["name"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60),
            registry=r,
        )
        self.kube_requests = Counter(
            "dockyard_kube_requests_total",
            "Requests the operator sent to the API server, by verb and resource.",
            ["verb", "resource"],
            registry=r,
        )
        self.docker_calls = Counter(
            "dockyard_docker_calls_total", "Docker API calls made by reconcilers.", ["host", "call"], registry=r
        )
        self.docker_events = Counter(
            "dockyard_docker_events_total", "Docker events received per host.", ["host"], registry=r
        )
        self.leader = Gauge("leader_election_master_status", "1 while this replica leads.", ["name"], registry=r)
        # DockerService data plane, per service (namespace/name) and backend (DockerContainer name).
        self.service_connections = Counter(
            "dockyard_service_connections_total",
            "Connections per DockerService and backend: opened (spliced), failed (dial refused or timed out).",
            ["service", "backend", "result"],
            registry=r,
        )
        self.service_active = Gauge(
            "dockyard_service_connections_active", "Connections open now.", ["service", "backend"], registry=r
        )
        self.service_bytes = Counter(
            "dockyard_service_bytes_total",
            "Bytes moved per direction: to_backend (client to container) and to_client.",
            ["service", "backend", "direction"],
            registry=r,
        )
        self.service_dial = Histogram(
            "dockyard_service_dial_seconds",
            "From picking a backend to its agent saying it is connected.",
            ["service"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
            registry=r,
        )

        self.stats_polls = Counter(
            "dockyard_stats_polls_total",
            "Requests for a host's container stats, by result (ok, error).",
            ["host", "result"],
            registry=r,
        )
        self.stats_docker_calls = Counter(
            "dockyard_stats_docker_calls_total",
            "Docker API calls the host's agent made to answer them (one list plus one per running container).",
            ["host"],
            registry=r,
        )
        self.stats_poll_time = Histogram(
            "dockyard_stats_poll_seconds",
            "From asking a host for its container stats to having them.",
            ["host"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20),
            registry=r,
        )

    def observe_stats_poll(self, host: str, result: str, seconds: float, docker_calls: int) -> None:
        self.stats_polls.labels(host, result).inc()
        self.stats_poll_time.labels(host).observe(seconds)
        self.stats_docker_calls.labels(host).inc(docker_calls)

    def add_container_collector(self, stats: StatsSource, objects: ObjectSource) -> None:
        self.registry.register(_ContainerCollector(stats, objects))

    def add_agent_collector(self, stats: StatsSource, sessions: SessionSource) -> None:
        self.registry.register(_AgentCollector(stats, sessions))

    def count_kube_request(self, method: str, path: str) -> None:
        # /apis/<group>/<version>/[namespaces/<ns>/]<plural>[/<name>[/<sub>]] -> plural (+ /sub)
        parts = [p for p in path.split("/") if p]
        parts = parts[2:] if parts[:1] == ["api"] else parts[3:]
        if parts[:1] == ["namespaces"] and len(parts) > 2:
            parts = parts[2:]
        resource = parts[0] if parts else "?"
        if len(parts) >= 3:
            resource += "/" + parts[2]
        self.kube_requests.labels(method, resource).inc()

    def count_docker_call(self, host: str, call: str) -> None:
        self.docker_calls.labels(host, call).inc()

    def count_docker_event(self, host: str) -> None:
        self.docker_events.labels(host).inc()

    def count_service_connection(self, service: str, backend: str, result: str) -> None:
        self.service_connections.labels(service, backend, result).inc()

    def service_connection_active(self, service: str, backend: str, delta: int) -> None:
        self.service_active.labels(service, backend).inc(delta)

    def count_service_bytes(self, service: str, backend: str, to_backend: int, to_client: int) -> None:
        self.service_bytes.labels(service, backend, "to_backend").inc(to_backend)
        self.service_bytes.labels(service, backend, "to_client").inc(to_client)

    def observe_service_dial(self, service: str, seconds: float) -> None:
        self.service_dial.labels(service).observe(seconds)

    def forget_service_backend(self, service: str, backend: str) -> None:
        """Drop a backend's series when it leaves its service: replicas come and go with every rollout."""
        for metric, rest in (
            (self.service_connections, (("opened",), ("failed",))),
            (self.service_bytes, (("to_backend",), ("to_client",))),
        ):
            for extra in rest:
                with contextlib.suppress(KeyError):
                    metric.remove(service, backend, *extra)
        # The gauge only once its connections are gone: removed earlier, their ends would bring it back at -1.
        with contextlib.suppress(KeyError):
            if self.service_active.labels(service, backend)._value.get() <= 0:
                self.service_active.remove(service, backend)

    def forget_service(self, service: str) -> None:
        with contextlib.suppress(KeyError):
            self.service_dial.remove(service)

    def queue_observer(self, name: str) -> QueueMetrics:
        return QueueMetrics(self, name)

    def add_host_collector(self, source: HostStatsSource) -> None:
        self.registry.register(_HostCollector(source))


class QueueMetrics:
    """The work queue's observer (dockyard_operator.workqueue.observers.QueueObserver) for one named queue."""

    def __init__(self, metrics: Metrics, name: str) -> None:
        self._adds = metrics.queue_adds.labels(name)
        self._depth = metrics.queue_depth.labels(name)
        self._wait = metrics.queue_wait.labels(name)
        self._retries = metrics.queue_retries.labels(name)

    def on_add(self) -> None:
        self._adds.inc()

    def on_depth(self, depth: int) -> None:
        self._depth.set(depth)

    def on_wait(self, seconds: float) -> None:
        self._wait.observe(seconds)

    def on_retry(self) -> None:
        self._retries.inc()


class _HostCollector(Collector):
    def __init__(self, source: HostStatsSource) -> None:
        self._source = source

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("dockyard_host_connected", "1 while the Docker host is reachable.", labels=["host"])
        # Byte totals only grow (per agent session; a new session starts again from zero, which rate() reads as
        # a counter reset): counters, exposed as *_total.
        sent = CounterMetricFamily(
            "dockyard_tunnel_sent_bytes", "Payload bytes sent to the host's agent.", labels=["host"]
        )
        received = CounterMetricFamily(
            "dockyard_tunnel_received_bytes", "Payload bytes received from the host's agent.", labels=["host"]
        )
        streams = GaugeMetricFamily("dockyard_tunnel_open_streams", "Open mux streams.", labels=["host"])
        rtt = GaugeMetricFamily("dockyard_tunnel_rtt_seconds", "Last measured tunnel round trip.", labels=["host"])
        for host, reachable, b_sent, b_received, n_streams, rtt_s in self._source():
            up.add_metric([host], 1.0 if reachable else 0.0)
            sent.add_metric([host], float(b_sent))
            received.add_metric([host], float(b_received))
            streams.add_metric([host], float(n_streams))
            if rtt_s is not None:
                rtt.add_metric([host], rtt_s)
        return [up, sent, received, streams, rtt]


_CONTAINER_LABELS = ["namespace", "name", "host"]


class _ContainerCollector(Collector):
    """Per-DockerContainer series, built at scrape time from the latest documents and the informer cache: a
    container that is gone (or a host that stopped answering) simply has no series any more, nothing to forget.
    Labels: namespace, name, host — one series per DockerContainer and metric (health: three), never the Docker
    id, which changes with every recreate."""

    def __init__(self, stats: StatsSource, objects: ObjectSource) -> None:
        self._stats = stats
        self._objects = objects

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        def counter(name: str, doc: str) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=_CONTAINER_LABELS)

        def gauge(name: str, doc: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=_CONTAINER_LABELS)

        cpu = counter("dockyard_container_cpu_usage_seconds", "CPU time the container used (user + system).")
        memory = gauge(
            "dockyard_container_memory_usage_bytes",
            "Memory in use as docker stats shows it: usage minus inactive page cache (the working set).",
        )
        limit = gauge("dockyard_container_memory_limit_bytes", "Memory limit; the host's memory when unlimited.")
        rx = counter("dockyard_container_network_receive_bytes", "Bytes received on all the container's networks.")
        tx = counter("dockyard_container_network_transmit_bytes", "Bytes sent on all the container's networks.")
        read = counter("dockyard_container_block_read_bytes", "Bytes read from block devices.")
        write = counter("dockyard_container_block_write_bytes", "Bytes written to block devices.")
        restarts = counter(
            "dockyard_container_restarts", "Restarts of the container (status.restartCount of the DockerContainer)."
        )
        health = GaugeMetricFamily(
            "dockyard_container_health_status",
            "1 for the container's current health state (only containers with a health check).",
            labels=[*_CONTAINER_LABELS, "status"],
        )
        placed = list(self._objects())
        # Stats series exist while their DockerContainer does (the informer cache), not until the next poll
        # notices the Docker container went: a deleted DockerContainer's series vanish at once.
        hosts = {(namespace, name): host for namespace, name, host, _, _ in placed}
        seen: set[tuple[str, str]] = set()
        for host, document in self._stats():
            for c in document.containers:
                # Only DockerContainers, and only on the DockerHost that created them: two hosts may reach one
                # daemon, and each reports only its own (containers from before the host label have none).
                if not c.namespace or not c.name or (c.host and c.host != host) or (c.namespace, c.name) in seen:
                    continue
                if hosts.get((c.namespace, c.name)) != host:
                    continue
                seen.add((c.namespace, c.name))
                labels = [c.namespace, c.name, host]
                cpu.add_metric(labels, c.cpu_seconds)
                memory.add_metric(labels, float(c.memory_bytes))
                limit.add_metric(labels, float(c.memory_limit_bytes))
                rx.add_metric(labels, float(c.network_receive_bytes))
                tx.add_metric(labels, float(c.network_transmit_bytes))
                read.add_metric(labels, float(c.block_read_bytes))
                write.add_metric(labels, float(c.block_write_bytes))
        for namespace, name, host, restart_count, state in placed:
            labels = [namespace, name, host]
            restarts.add_metric(labels, float(restart_count))
            if state in HEALTH_STATES:
                for candidate in HEALTH_STATES:
                    health.add_metric([*labels, candidate], 1.0 if candidate == state else 0.0)
        return [cpu, memory, limit, rx, tx, read, write, restarts, health]


class _AgentCollector(Collector):
    """Per-host agent series: its session (operator side) and its own counters (from its stats documents)."""

    def __init__(self, stats: StatsSource, sessions: SessionSource) -> None:
        self._stats = stats
        self._sessions = sessions

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        session_start = GaugeMetricFamily(
            "dockyard_agent_session_start_time_seconds",
            "When the host's current tunnel session began (uptime: time() minus this).",
            labels=["host"],
        )
        connects = CounterMetricFamily(
            "dockyard_agent_connects", "Sessions the host's agent opened since this operator started.", labels=["host"]
        )
        start = GaugeMetricFamily(
            "dockyard_agent_start_time_seconds", "When the agent process started.", labels=["host"]
        )
        reconnects = CounterMetricFamily(
            "dockyard_agent_reconnects",
            "Sessions the agent opened since it started, the first one not counted.",
            labels=["host"],
        )
        streams = CounterMetricFamily(
            "dockyard_agent_streams",
            "Streams the agent served since it started, by kind (docker, tcp, imports, stats).",
            labels=["host", "kind"],
        )
        for host, started_at, count in self._sessions():
            session_start.add_metric([host], started_at)
            connects.add_metric([host], float(count))
        for host, document in self._stats():
            agent = document.agent
            if agent is None:
                continue
            start.add_metric([host], agent.started_at)
            reconnects.add_metric([host], float(max(0, agent.sessions - 1)))
            for kind, count in sorted(agent.streams.items()):
                if kind in ("docker", "tcp", "imports", "stats"):  # bounded: an agent cannot invent label values
                    streams.add_metric([host, kind], float(count))
        return [session_start, connects, start, reconnects, streams]
