"""Tracing: a reconcile's span tree (the SDK's in-memory exporter) with a child span per Docker call and per
Kubernetes API write, made against the real dockerd and API server; trace ids on log lines; nothing when off."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from dockyard_operator import tracing
from dockyard_operator.dockerapi import errors as docker_errors
from dockyard_operator.dockerapi.client import DockerClient
from dockyard_operator.informer.informing import Informer
from dockyard_operator.kube import errors as kube_errors
from dockyard_operator.kube.client import KubeClient
from dockyard_operator.kube.resources import DOCKERCONTAINERS
from dockyard_operator.runtime.controller import Controller
from dockyard_operator.runtime.informers import Source
from dockyard_operator.workqueue.clocks import FakeClock


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    tracing.enable(memory, batch=False)
    try:
        yield memory
    finally:
        tracing.disable()


def controller(reconcile: Any) -> Controller:
    informer = Informer(client=None, resource=DOCKERCONTAINERS)  # type: ignore[arg-type]  # never run
    return Controller(name="dockercontainer", kind="DockerContainer", for_=Source([informer]), reconcile=reconcile,
                      clock=FakeClock())  # fmt: skip


@pytest.mark.kube
@pytest.mark.docker
async def test_a_reconcile_is_one_trace_with_its_docker_calls_and_api_writes(
    devenv: Any, exporter: InMemorySpanExporter
) -> None:
    docker = DockerClient.open(host="lab", url=devenv.docker_host)
    kube = await KubeClient.connect(kubeconfig=str(devenv.kubeconfig))
    log_lines: list[dict[str, Any]] = []
    try:
        await docker.ping()  # outside a reconcile (a heartbeat): no trace of its own

        async def reconcile(key: str) -> float | None:
            await docker.ping()
            with pytest.raises(docker_errors.DockerError):
                await docker.inspect("dockyard-tracing-no-such-container")
            await kube.request("GET", "/api/v1/namespaces/default")  # a read: no span
            with pytest.raises(kube_errors.NotFoundError):  # a write that fails: a span with an error status
                await kube.request(
                    "PATCH", "/api/v1/namespaces/default/configmaps/dockyard-tracing-no-such-map",
                    body={"metadata": {"labels": {"x": "y"}}}, content_type="application/merge-patch+json",
                )  # fmt: skip
            log_lines.append(tracing.add_trace_ids(None, "info", {"event": "inside"}))
            return 7.0

        assert await controller(reconcile)._reconcile("shop/web") == 7.0
    finally:
        await docker.close()
        await kube.close()

    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.parent is None]
    assert [s.name for s in roots] == ["reconcile DockerContainer"], [s.name for s in spans]
    root = roots[0]
    attributes = dict(root.attributes or {})
    assert attributes["dockyard.kind"] == "DockerContainer"
    assert attributes["dockyard.key"] == "shop/web"
    assert attributes["dockyard.result"] == "requeue_after"
    assert attributes["dockyard.requeue_after"] == 7.0
    assert root.end_time is not None
    assert root.start_time is not None
    assert root.end_time > root.start_time
    children = [s for s in spans if s.parent is not None]
    assert [s.name for s in children] == ["docker ping", "docker inspect", "kube PATCH"]
    for child in children:
        assert child.parent is not None
        assert child.parent.span_id == root.context.span_id
        assert child.context.trace_id == root.context.trace_id
    assert dict(children[0].attributes or {})["dockyard.host"] == "lab"
    assert children[1].status.status_code is StatusCode.ERROR
    patch = children[2]
    assert patch.status.status_code is StatusCode.ERROR
    assert str(dict(patch.attributes or {})["url.path"]).endswith("/configmaps/dockyard-tracing-no-such-map")
    assert log_lines[0]["trace_id"] == format(root.context.trace_id, "032x")


async def test_a_failing_reconcile_records_its_error(exporter: InMemorySpanExporter) -> None:
    async def reconcile(key: str) -> float | None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await controller(reconcile)._reconcile("shop/web")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]


def test_off_it_is_a_shared_no_op_and_logs_carry_no_ids() -> None:
    assert not tracing.enabled()
    assert tracing.span("reconcile X") is tracing.span("reconcile Y")
    with tracing.span("reconcile X") as span:
        span.set_attribute("k", 1)
        assert tracing.add_trace_ids(None, "info", {"event": "e"}) == {"event": "e"}


def test_off_the_sdk_is_not_even_imported_and_on_needs_an_endpoint() -> None:
    code = (
        "import sys; from dockyard_operator import run, tracing; "
        "on = tracing.enable_from_environment({}); "
        "off = tracing.enable_from_environment("
        "{'OTEL_EXPORTER_OTLP_ENDPOINT': 'http://x', 'OTEL_SDK_DISABLED': 'true'}); "
        "print(on, off, 'opentelemetry.sdk' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]
