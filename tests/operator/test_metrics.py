"""Metric types: totals are counters (rate() works on them), and Docker events are counted."""

from __future__ import annotations

from prometheus_client import generate_latest

from dockyard_operator.metrics import Metrics


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
