"""OpenTelemetry tracing: a span per reconcile, with a child span per Docker call and per Kubernetes API write.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set; then spans go by OTLP/HTTP
(protobuf) with the SDK's batch processor, and the SDK reads the other standard OTEL_* variables itself (service
name, resource attributes, sampler, headers, timeouts). Off, it costs one global read and the return of a shared
no-op object per span site: the SDK and the exporter are not even imported (measured: hack/bench-metrics).

Only this module imports opentelemetry (an import contract): the rest of the operator calls span() and
child_span(). A child span is made only inside a recording span, so heartbeats, watches and the leader's Lease
renewals never start traces of their own.

Log lines written inside a span carry its trace_id and span_id (add_trace_ids, a structlog processor), so a
trace found in the tracing backend leads to its log lines and back.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Tracer

AttributeValue = str | int | float | bool

#: The service name when OTEL_SERVICE_NAME does not give one.
SERVICE_NAME = "dockyard-operator"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


class Span(Protocol):
    def set_attribute(self, key: str, value: AttributeValue) -> None: ...

    def __enter__(self) -> Span: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _NoSpan:
    """What span() returns while tracing is off: one shared object, nothing recorded."""

    __slots__ = ()

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        pass


_NO_SPAN = _NoSpan()
_tracer: Tracer | None = None
_provider: TracerProvider | None = None


class _Started:
    """An SDK span as a context manager that is also the Span handed to the caller."""

    __slots__ = ("_cm", "_span")

    def __init__(self, cm: Any) -> None:
        self._cm = cm
        self._span: Any = None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self._span.set_attribute(key, value)

    def __enter__(self) -> _Started:
        self._span = self._cm.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._cm.__exit__(exc_type, exc, tb)


def span(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> Span:
    """A new span (a root span when none is current), current inside its `with` block. An exception leaving the
    block is recorded on it and sets its status to error."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    return _Started(tracer.start_as_current_span(name, attributes=attributes))


def child_span(name: str, attributes: Mapping[str, AttributeValue] | None = None) -> Span:
    """Like span(), but only inside a recording span: a no-op anywhere else."""
    tracer = _tracer
    if tracer is None:
        return _NO_SPAN
    from opentelemetry import trace

    if not trace.get_current_span().is_recording():
        return _NO_SPAN
    return _Started(tracer.start_as_current_span(name, attributes=attributes))


def without_span() -> contextvars.Context:
    """A copy of the current context outside any span, for a task or a server that outlives the reconcile that
    starts it (a host's event stream, a data-plane listener): asyncio copies the context into new tasks and
    callbacks, and without this their work and log lines would belong to that one reconcile's trace forever."""
    context = contextvars.copy_context()
    if _tracer is not None:
        from opentelemetry import context as otel_context

        context.run(otel_context.attach, otel_context.Context())
    return context


def enabled() -> bool:
    return _tracer is not None


def enable(exporter: SpanExporter | None = None, *, batch: bool = True) -> None:
    """Trace from now on: to `exporter` (tests pass the SDK's in-memory one), else OTLP/HTTP configured by the
    OTEL_* environment. `batch=False` exports each span as it ends (tests)."""
    global _tracer, _provider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; ours is only the default name.
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    _provider = provider
    _tracer = provider.get_tracer("dockyard_operator")


def disable() -> None:
    """Stop tracing, sending what is still buffered (at shutdown; tests)."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def enable_from_environment(environ: Mapping[str, str] = os.environ) -> bool:
    """Turn tracing on when an OTLP endpoint is configured; returns whether it is on. OTEL_SDK_DISABLED=true
    keeps it off, as in every OpenTelemetry SDK."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if not any(environ.get(name) for name in ENDPOINT_VARIABLES):
        return False
    enable()
    return True


def add_trace_ids(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: the current span's trace_id and span_id (W3C hex) on the log line."""
    if _tracer is None:
        return event
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event
