"""Prometheus metrics. Names follow controller-runtime and client-go's workqueue where a counterpart exists,
so dashboards built for Go operators work unchanged; Dockyard-specific series are prefixed `dockyard_`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

HostStatsSource = Callable[[], Iterable[tuple[str, bool, int, int, int, float | None]]]
"""Yields (host, reachable, bytes_sent, bytes_received, open_streams, rtt_seconds) at scrape time."""


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
