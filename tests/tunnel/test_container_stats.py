"""Docker's stats JSON -> the figures of a `stats` document (cgroup v1 and v2, as dockerd 20.10+ sends them)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dockyard_tunnel.agent.stats import AgentActivity, StatsCollector
from dockyard_tunnel.container_stats import StatsDocument, from_docker

LABELS = {"dockyard.dev/namespace": "shop", "dockyard.dev/name": "web", "dockyard.dev/host": "edge-1"}

# Trimmed from a real `GET /containers/ID/stats?stream=false&one-shot=true` on cgroup v1 (this machine).
V1: dict[str, Any] = {
    "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000, "usage_in_kernelmode": 1, "usage_in_usermode": 1}},
    "memory_stats": {
        "usage": 50 * 2**20,
        "limit": 2**30,
        "stats": {"total_inactive_file": 8 * 2**20, "inactive_file": 1 * 2**20, "cache": 9 * 2**20},
    },
    "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 10}, "eth1": {"rx_bytes": 24, "tx_bytes": 5}},
    "blkio_stats": {
        "io_service_bytes_recursive": [
            {"major": 8, "minor": 0, "op": "Read", "value": 4096},
            {"major": 8, "minor": 0, "op": "Write", "value": 8192},
            {"major": 8, "minor": 0, "op": "Total", "value": 12288},
            {"major": 8, "minor": 16, "op": "Read", "value": 4096},
        ]
    },
}
# cgroup v2: no total_* keys, lower-case blkio ops, no networks for --network none.
V2: dict[str, Any] = {
    "cpu_stats": {"cpu_usage": {"total_usage": 10}},
    "memory_stats": {"usage": 3000, "limit": 4000, "stats": {"inactive_file": 1000, "anon": 2000}},
    "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 7}, {"op": "write", "value": 9}]},
}


def test_cgroup_v1_figures_are_what_docker_stats_shows() -> None:
    s = from_docker("abc", LABELS, V1)
    assert (s.namespace, s.name, s.host) == ("shop", "web", "edge-1")
    assert s.cpu_seconds == pytest.approx(2.5)
    assert s.memory_bytes == 42 * 2**20  # usage minus the hierarchy's inactive file cache, as the CLI does
    assert s.memory_limit_bytes == 2**30
    assert (s.network_receive_bytes, s.network_transmit_bytes) == (1024, 15)
    assert (s.block_read_bytes, s.block_write_bytes) == (8192, 8192)  # Total is not counted twice


def test_cgroup_v2_figures() -> None:
    s = from_docker("abc", {}, V2)
    assert (s.namespace, s.name, s.host) == ("", "", "")
    assert s.memory_bytes == 2000
    assert (s.network_receive_bytes, s.network_transmit_bytes) == (0, 0)
    assert (s.block_read_bytes, s.block_write_bytes) == (7, 9)


def test_cache_larger_than_usage_is_not_subtracted() -> None:
    """A racy sample (inactive file above usage) must not go negative: the CLI keeps the raw usage then."""
    raw = {**V2, "memory_stats": {"usage": 100, "limit": 4000, "stats": {"inactive_file": 500}}}
    assert from_docker("abc", {}, raw).memory_bytes == 100


def test_a_stopped_container_sample_has_zeros() -> None:
    """dockerd answers a container that stopped meanwhile with empty sections, not an error."""
    s = from_docker("abc", LABELS, {"cpu_stats": {}, "memory_stats": {}, "blkio_stats": {}})
    assert (s.cpu_seconds, s.memory_bytes, s.memory_limit_bytes) == (0, 0, 0)


def test_document_round_trips_and_ignores_fields_of_newer_agents() -> None:
    doc = StatsDocument(containers=[from_docker("abc", LABELS, V1)], docker_calls=2)
    raw = doc.model_dump_json()
    assert StatsDocument.model_validate_json(raw) == doc
    assert StatsDocument.model_validate_json('{"containers": [], "future": 1}').containers == []


class _Daemon:
    """Answers the list and the stats calls of StatsCollector; never answers the stats of `hung`."""

    def __init__(self, hung: str) -> None:
        self.hung = hung

    async def running_managed(self) -> list[tuple[str, dict[str, str]]]:
        return [("live", LABELS), (self.hung, {**LABELS, "dockyard.dev/name": "going"})]

    async def one_shot_stats(self, container_id: str) -> dict[str, Any]:
        if container_id == self.hung:
            await asyncio.Event().wait()
        return V1


async def test_a_stats_call_the_daemon_never_answers_is_an_error_not_a_hang() -> None:
    collector = StatsCollector(_Daemon(hung="gone"), AgentActivity(), call_timeout=0.2)  # type: ignore[arg-type]
    document = await asyncio.wait_for(collector.collect(), timeout=5)
    assert [c.id for c in document.containers] == ["live"]
    assert "within 0.2s" in document.errors["gone"]
    assert document.docker_calls == 3


async def test_the_document_comes_in_time_with_what_is_late_in_errors() -> None:
    """One call at a time, the second never answered and the third queued behind it: the document still comes."""

    class Three(_Daemon):
        async def running_managed(self) -> list[tuple[str, dict[str, str]]]:
            return [*(await super().running_managed()), ("queued", {**LABELS, "dockyard.dev/name": "queued"})]

    daemon: Any = Three(hung="gone")
    collector = StatsCollector(daemon, AgentActivity(), concurrency=1, call_timeout=60, collect_timeout=0.3)
    document = await asyncio.wait_for(collector.collect(), timeout=5)
    assert [c.id for c in document.containers] == ["live"]
    assert sorted(document.errors) == ["gone", "queued"]
    assert "0.3s" in document.errors["queued"]
