"""Tracing and HTTP metrics: one trace per order across the services, RED metrics per route.

A trace crosses a service boundary only in Kafka headers (W3C `traceparent`), and it
crosses the outbox in the row: `Outbox.add` stores the context of the span that wrote
the event, and the relay publishes the row in a span that is that context's child, so
the later, batched send continues the request's trace instead of starting its own.

Spans are exported when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (OTLP over HTTP, the
standard `OTEL_*` variables apply) or when `TRACES_DIR` is set (JSON lines, one file per
process: what the tests read). Otherwise no tracer provider is installed: nothing is
instrumented, no span is started and nothing exported, and the trace context of incoming
events still passes through to the events they cause.
"""

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.settings import ServiceSettings

tracer = trace.get_tracer("chassis")
"""The chassis's tracer: a proxy until a provider is installed, a no-op if none ever is."""

recording = False
"""Whether spans are recorded: set by `configure_tracing` when it installs a provider.
Without one, a span would record nothing and only pass its parent's context on, so the
chassis passes the context on itself: a no-op span through OpenTelemetry's API cost 4 to
13 microseconds, and a saga started about twenty (docs/performance.md, "no spans while
tracing is off")."""

OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"


def configure_tracing(name: str, settings: ServiceSettings) -> TracerProvider | None:
    """Install a tracer provider for service `name` if an exporter is configured.

    Returns it (the caller shuts it down, which flushes what is buffered), or None when
    tracing is off. Call once per process.
    """
    exporters: list[SpanExporter] = []
    if os.environ.get(OTLP_ENDPOINT_ENV):
        # Imported only when used: the exporter pulls in protobuf.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporters.append(OTLPSpanExporter())
    if settings.traces_dir is not None:
        exporters.append(_file_exporter(settings.traces_dir / f"{name}-{os.getpid()}.jsonl"))
    if not exporters:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    global recording
    recording = True
    return provider


def _file_exporter(path: Path) -> SpanExporter:
    path.parent.mkdir(parents=True, exist_ok=True)
    out: IO[str] = path.open("a", encoding="utf-8")  # closed with the process
    return ConsoleSpanExporter(out=out, formatter=lambda span: span.to_json(indent=None) + "\n")


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    """Trace the app's requests (a server span each; probes and scrapes left out)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="/health/live,/health/ready,/metrics"
    )


def instrument_engine(engine: AsyncEngine, provider: TracerProvider) -> None:
    """Trace the engine's statements (a client span each)."""
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=provider)


def current_context() -> dict[str, str]:
    """The current trace context as W3C headers (empty when there is none)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_of(carrier: Mapping[str, str] | None) -> Context:
    """The trace context that `carrier` (W3C headers) holds; an empty one for None."""
    return propagate.extract(dict(carrier or {}))


def publish_span(
    topic: str, carrier: Mapping[str, str] | None
) -> tuple[Span, list[tuple[str, bytes]]]:
    """The span of publishing a record to `topic`, a child of the context `carrier` holds
    (W3C headers, as `current_context` wrote them), and the record's headers carrying it on.

    While tracing is off: no span, and the headers carry `carrier` on as it is.
    """
    if not recording:
        return INVALID_SPAN, _headers(carrier or {})
    span = tracer.start_span(
        f"publish {topic}",
        context=context_of(carrier),
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "kafka", "messaging.destination.name": topic},
    )
    return span, kafka_headers(span)


def kafka_headers(span: Span) -> list[tuple[str, bytes]]:
    """Kafka record headers that carry `span`'s context to the record's consumers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return _headers(carrier)


def _headers(carrier: Mapping[str, str]) -> list[tuple[str, bytes]]:
    return [(key, value.encode()) for key, value in carrier.items()]


def context_of_record(headers: Sequence[tuple[str, bytes]]) -> Context:
    """The trace context a Kafka record's headers carry (empty if none)."""
    return context_of({key: value.decode(errors="replace") for key, value in headers})


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, str],
    kind: SpanKind = SpanKind.INTERNAL,
    context: Context | None = None,
    links: Sequence[Context] = (),
) -> Iterator[Span]:
    """A span, current for the block, child of `context` (or of the current span).

    It links to the span current in each of `links`: one piece of work done for several
    traces, such as a load for all the events of a batch, shows in each of them.

    While tracing is off: no span; `context`, if given, is current for the block, so
    what the block writes or logs carries that trace on, and the block gets the span
    current in it, which records nothing.
    """
    if not recording:
        token = None if context is None else otel_context.attach(context)
        try:
            yield trace.get_current_span()
        finally:
            if token is not None:
                otel_context.detach(token)
        return
    linked = [trace.get_current_span(c).get_span_context() for c in links]
    found = [trace.Link(c) for c in linked if c.is_valid]
    with tracer.start_as_current_span(name, context, kind, attributes, found) as current:
        yield current


def trace_ids() -> tuple[str, str] | None:
    """`(trace_id, span_id)` of the current span, in hex, or None outside any trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
UNROUTED = "(unrouted)"
"""The `route` label of requests answered before routing (an overload 503) or by none (404)."""


class HttpMetrics:
    """Pure ASGI middleware: count every HTTP answer and time it, by route template.

    The route label is the template (`/v1/orders/{order_id}`), never the raw path, so
    that the number of series stays bounded whatever clients send.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            # Routing writes the matched route into this same scope.
            route = getattr(scope.get("route"), "path", UNROUTED)
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)
