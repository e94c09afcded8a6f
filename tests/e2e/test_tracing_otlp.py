"""Real OTLP over HTTP from the operator process: a DockerContainer's reconcile arrives as one trace (its Docker
calls and API writes as children) at a receiver in this test, and the operator's log lines carry its trace id.

The operator under test is a second one, of its own class, with its own namespace and direct DockerHost and no
tunnel or leader election (the session's operator keeps the Lease and the tunnel's Secrets to itself).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from dockyard_e2e import (
    SESSION,
    SLEEPER,
    OperatorProcess,
    apply,
    condition,
    container_manifest,
    create_namespace,
    eventually,
    get_dc,
    host_manifest,
    kubectl,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from dockyard_operator.kube.client import KubeClient

pytestmark = [pytest.mark.kube, pytest.mark.docker]


class Receiver:
    """A minimal OTLP/HTTP trace receiver: POST /v1/traces with a protobuf ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.spans: list[tuple[dict[str, str], Span]] = []
        self.content_types: set[str] = set()

    async def traces(self, request: web.Request) -> web.Response:
        self.content_types.add(request.content_type)
        message = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in message.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                self.spans.extend((resource, span) for span in scope.spans)
        return web.Response(body=b"", content_type="application/x-protobuf")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", rec.traces)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield rec, port
    finally:
        await runner.cleanup()


def attributes(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in span.attributes:
        field = a.value.WhichOneof("value")
        out[a.key] = getattr(a.value, field) if field else None
    return out


async def test_a_reconcile_arrives_as_one_trace_over_otlp_http(
    devenv: Any,
    operator: OperatorProcess,
    operator_kubeconfig: Path,
    kube: KubeClient,
    tmp_path: Path,
    receiver: tuple[Receiver, int],
) -> None:
    rec, port = receiver
    traced_class = f"traced-{SESSION}"
    namespace = create_namespace(devenv, f"traced-{SESSION}-{uuid.uuid4().hex[:4]}", operator_class=traced_class)
    host = f"traced-{uuid.uuid4().hex[:6]}"
    traced = OperatorProcess(
        devenv, tmp_path, namespace, operator_kubeconfig, operator.operator_namespace,
        operator_class=traced_class,
        extra_args=("--no-leader-elect", "--no-tunnel"),
        extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_BSP_SCHEDULE_DELAY": "200"},
    )  # fmt: skip
    name = f"trace-{uuid.uuid4().hex[:6]}"
    traced.start()
    try:
        host_obj = host_manifest(host, {"url": devenv.docker_host}, operator_class=traced_class)
        kubectl(devenv, "apply", "-f", "-", stdin=json.dumps(host_obj))
        apply(devenv, container_manifest(name, namespace, host, image=devenv.test_image, args=SLEEPER))

        async def ready() -> dict[str, Any] | None:
            obj = await get_dc(kube, namespace, name)
            return obj if condition(obj, "Ready").get("status") == "True" else None

        await eventually(ready, timeout=60, what="Ready")
        key = f"{namespace}/{name}"

        async def creating_trace() -> Span | None:
            for _resource, span in rec.spans:
                if (
                    span.name == "reconcile DockerContainer"
                    and attributes(span).get("dockyard.key") == key
                    and any(s.name == "docker create" and s.trace_id == span.trace_id for _, s in rec.spans)
                ):
                    return span
            return None

        root = await eventually(creating_trace, timeout=30, what="the reconcile that created the container")
    finally:
        kubectl(devenv, "delete", "dockercontainer", name, "-n", namespace, "--ignore-not-found", "--timeout=60s",
                check=False)  # fmt: skip
        kubectl(devenv, "delete", "dockerhost", host, "--ignore-not-found", "--timeout=60s", check=False)
        code = await asyncio.to_thread(traced.stop)  # the receiver must answer its last flush meanwhile
        kubectl(devenv, "delete", "namespace", namespace, "--ignore-not-found", "--timeout=120s", check=False)
    assert code == 0, traced.tail()
    assert "Failed to export" not in traced.log.read_text()

    assert rec.content_types == {"application/x-protobuf"}
    resource = next(r for r, s in rec.spans if s is root)
    assert resource["service.name"] == "dockyard-operator"
    assert root.parent_span_id == b""
    root_attributes = attributes(root)
    assert root_attributes["dockyard.kind"] == "DockerContainer"
    assert root_attributes["dockyard.result"] in ("success", "requeue_after")
    assert root.end_time_unix_nano > root.start_time_unix_nano
    children = [s for _, s in rec.spans if s.trace_id == root.trace_id and s is not root]
    names = {s.name for s in children}
    assert {"docker create", "docker start"} <= names, names
    assert any(n.startswith("kube ") for n in names), names  # the status write
    for child in children:
        assert child.parent_span_id == root.span_id, child.name
        assert root.start_time_unix_nano <= child.start_time_unix_nano <= child.end_time_unix_nano
        assert child.end_time_unix_nano <= root.end_time_unix_nano
    # The operator's log lines written inside that reconcile carry its trace id; work that outlives a reconcile
    # (the host's Docker event stream, started by the DockerHost's reconcile) carries none.
    trace_id = root.trace_id.hex()
    lines = [json.loads(line) for line in traced.log.read_text().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("trace_id") == trace_id]
    assert any(line["event"] == "reconciled" and line.get("key") == key for line in mine), mine
    assert all(line.get("span_id") for line in mine)
    events = [line for line in lines if line["event"] == "docker event"]
    assert events
    assert not [line for line in events if "trace_id" in line]
