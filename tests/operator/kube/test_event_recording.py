"""The Event recorder: queued behind a background writer, aggregated into series, bounded, drained at shutdown.

Unit tests on a fake client (the real API server's side is covered by the e2e tests that read Events back)."""

from __future__ import annotations

import asyncio
from typing import Any

from dockyard_operator.kube.recording import EventRecorder

JSON = dict[str, Any]


class SlowClient:
    """Records the calls; each takes `delay` seconds, like a round trip."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.created: list[JSON] = []
        self.patched: list[tuple[str, JSON]] = []

    async def create(self, resource: Any, body: JSON, *, namespace: str | None = None) -> JSON:
        await asyncio.sleep(self.delay)
        self.created.append(body)
        return body

    async def merge_patch(self, resource: Any, name: str, patch: JSON, *, namespace: str | None = None) -> JSON:
        await asyncio.sleep(self.delay)
        self.patched.append((name, patch))
        return patch


def pod(name: str = "web") -> JSON:
    return {"apiVersion": "dockyard.dev/v1alpha1", "kind": "DockerContainer",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"}}  # fmt: skip


async def test_without_a_writer_an_event_is_written_before_record_returns() -> None:
    client = SlowClient()
    recorder = EventRecorder(client=client, instance="test")  # type: ignore[arg-type]
    await recorder.record(pod(), reason="Started", note="started")
    assert [e["reason"] for e in client.created] == ["Started"]


async def test_with_a_writer_record_does_not_wait_for_the_round_trip_and_order_is_kept() -> None:
    client = SlowClient(delay=0.05)
    recorder = EventRecorder(client=client, instance="test")  # type: ignore[arg-type]
    writer = asyncio.create_task(recorder.run())
    await asyncio.sleep(0)
    for reason in ("Scheduled", "Created", "Started"):
        await recorder.record(pod(), reason=reason, note=reason.lower())
    assert client.created == [], "record returned before any round trip: nothing is written yet"
    await asyncio.sleep(0.3)
    assert [e["reason"] for e in client.created] == ["Scheduled", "Created", "Started"]
    writer.cancel()


async def test_repeats_become_a_series_on_the_first_event() -> None:
    client = SlowClient()
    recorder = EventRecorder(client=client, instance="test")  # type: ignore[arg-type]
    writer = asyncio.create_task(recorder.run())
    await asyncio.sleep(0)
    for _ in range(3):
        await recorder.record(pod(), reason="BackOff", note="back-off 10s", type_="Warning")
    await asyncio.sleep(0.05)
    assert len(client.created) == 1
    name = client.created[0]["metadata"]["name"]
    assert [(n, p["series"]["count"]) for n, p in client.patched] == [(name, 2), (name, 3)]
    writer.cancel()


async def test_a_full_queue_drops_events_instead_of_blocking_and_drain_sends_the_rest() -> None:
    client = SlowClient(delay=0.01)
    recorder = EventRecorder(client=client, instance="test", queue_size=5)  # type: ignore[arg-type]
    writer = asyncio.create_task(recorder.run())
    await asyncio.sleep(0)
    for i in range(8):
        await recorder.record(pod(f"c{i}"), reason="Created", note="created")
    assert recorder.dropped >= 2
    writer.cancel()  # shutdown: the writer goes, what is queued is drained within the timeout
    await asyncio.gather(writer, return_exceptions=True)
    await recorder.drain(timeout=2.0)
    assert len(client.created) + recorder.dropped == 8
    # And with the writer gone, recording falls back to writing inline.
    await recorder.record(pod("late"), reason="Killing", note="stopping")
    assert client.created[-1]["reason"] == "Killing"


class BrokenClient(SlowClient):
    """A response the client cannot make sense of (a 2xx whose body is not JSON, a failed credentials refresh)."""

    async def create(self, resource: Any, body: JSON, *, namespace: str | None = None) -> JSON:
        if body["reason"] == "Bad":
            raise ValueError("Expecting value: line 1 column 1")
        return await super().create(resource, body, namespace=namespace)


async def test_an_event_the_client_chokes_on_costs_that_event_not_the_writer() -> None:
    client = BrokenClient()
    recorder = EventRecorder(client=client, instance="test")  # type: ignore[arg-type]
    writer = asyncio.create_task(recorder.run())
    await asyncio.sleep(0)
    await recorder.record(pod(), reason="Bad", note="x")
    await recorder.record(pod(), reason="Started", note="started")
    await asyncio.sleep(0.05)
    assert not writer.done(), "the writer (and with it the operator's task group) survived"
    assert [e["reason"] for e in client.created] == ["Started"]
    writer.cancel()
