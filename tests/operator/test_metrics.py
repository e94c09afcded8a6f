"""Metric types: totals are counters (rate() works on them), and Docker events are counted."""

from __future__ import annotations

from prometheus_client import generate_latest

from dockyard_operator.metrics import Metrics
from dockyard_tunnel.container_stats import AgentCounters, ContainerStats, StatsDocument


def test_tunnel_byte_totals_are_counters_and_docker_events_are_counted() -> None:
    metrics = Metrics()
    metrics.add_host_collector(lambda: [("edge", True, 1234, 99, 3, 0.002)])
    metrics.count_docker_event("edge")
    metrics.count_docker_event("edge")
    text = generate_latest(metrics.registry).decode()
    assert "# TYPE dockyard_tunnel_sent_bytes_total counter" in text
    assert 'dockyard_tunnel_sent_bytes_total{host="edge"} 1234.0' in text
    assert 'dockyard_tunnel_received_bytes_total{host="edge"} 99.0' in text
    assert "# TYPE dockyard_tunnel_open_streams gauge" in text
    assert 'dockyard_docker_events_total{host="edge"} 2.0' in text


def _stats(namespace: str, name: str, host: str, memory: int) -> ContainerStats:
    return ContainerStats(
        id="c" * 12, namespace=namespace, name=name, host=host, cpu_seconds=1.5, memory_bytes=memory,
        memory_limit_bytes=2**30, network_receive_bytes=1, network_transmit_bytes=2, block_read_bytes=3,
        block_write_bytes=4,
    )  # fmt: skip


def test_container_series_follow_the_latest_documents_and_the_cache() -> None:
    documents: list[tuple[str, StatsDocument]] = []
    objects: list[tuple[str, str, str, int, str | None]] = []
    metrics = Metrics()
    metrics.add_container_collector(lambda: documents, lambda: objects)
    documents.append(
        (
            "edge",
            StatsDocument(
                containers=[
                    _stats("shop", "web", "edge", 100),
                    _stats("shop", "other-hosts", "edge-2", 5),  # another DockerHost on the same daemon
                    _stats("", "", "", 7),  # not a DockerContainer's
                ],
                agent=AgentCounters(started_at=1.0, sessions=3, streams={"stats": 4, "bogus": 1}),
            ),
        )
    )
    objects.extend([("shop", "web", "edge", 2, "unhealthy"), ("shop", "plain", "edge", 0, None)])
    text = generate_latest(metrics.registry).decode()
    web = 'host="edge",name="web",namespace="shop"'
    assert f"dockyard_container_memory_usage_bytes{{{web}}} 100.0" in text
    assert f"dockyard_container_cpu_usage_seconds_total{{{web}}} 1.5" in text
    assert f"dockyard_container_restarts_total{{{web}}} 2.0" in text
    assert f'dockyard_container_health_status{{{web},status="unhealthy"}} 1.0' in text
    assert f'dockyard_container_health_status{{{web},status="healthy"}} 0.0' in text
    assert 'name="plain",namespace="shop",status=' not in text  # no health check: no health series
    assert "other-hosts" not in text
    assert 'name=""' not in text
    # The DockerContainer is deleted: its series go with it at once, though the last document still lists it.
    objects.clear()
    assert "shop" not in generate_latest(metrics.registry).decode()
    documents.clear()
    assert "shop" not in generate_latest(metrics.registry).decode()


def test_agent_series_bound_their_label_values() -> None:
    doc = StatsDocument(agent=AgentCounters(started_at=1.0, sessions=3, streams={"stats": 4, "x" * 40: 1}))
    metrics = Metrics()
    metrics.add_agent_collector(lambda: [("edge", doc)], lambda: [("edge", 1700000000.0, 2)])
    text = generate_latest(metrics.registry).decode()
    assert 'dockyard_agent_reconnects_total{host="edge"} 2.0' in text
    assert 'dockyard_agent_connects_total{host="edge"} 2.0' in text
    assert 'dockyard_agent_streams_total{host="edge",kind="stats"} 4.0' in text
    assert "x" * 40 not in text
    assert 'dockyard_agent_session_start_time_seconds{host="edge"} 1.7e+09' in text
