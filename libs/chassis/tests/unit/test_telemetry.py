"""HTTP metrics by route template, trace context in Kafka headers, after-commit callbacks; no I/O."""

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from sqlalchemy.orm import Session

from chassis import telemetry
from chassis.db import after_commit
from chassis.settings import ServiceSettings


def answered(method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0


async def test_requests_are_counted_by_route_template_not_by_path() -> None:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def get_thing(thing_id: str) -> dict[str, str]:
        return {"thing_id": thing_id}

    app.add_middleware(telemetry.HttpMetrics)
    before = (
        answered("GET", "/things/{thing_id}", "200"),
        answered("GET", telemetry.UNROUTED, "404"),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for thing in ("a", "b"):
            assert (await client.get(f"/things/{thing}")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
    after = answered("GET", "/things/{thing_id}", "200"), answered("GET", telemetry.UNROUTED, "404")
    assert (after[0] - before[0], after[1] - before[1]) == (2, 1)
    duration = REGISTRY.get_sample_value(
        "http_request_duration_seconds_count", {"method": "GET", "route": "/things/{thing_id}"}
    )
    assert duration is not None and duration >= 2


def test_a_span_travels_in_kafka_headers_and_comes_back_out() -> None:
    with TracerProvider().get_tracer("test").start_as_current_span("publish") as span:
        headers = telemetry.kafka_headers(span)
    assert [key for key, _ in headers] == ["traceparent"]
    carried = telemetry.context_of_record(headers)
    assert trace.get_current_span(carried).get_span_context().span_id == (
        span.get_span_context().span_id
    )


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """Where the spans the chassis's tracer ends go; whether it starts any is up to
    `telemetry.recording`, which stays off unless a test sets it."""
    provider, spans = TracerProvider(), InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(telemetry, "tracer", provider.get_tracer("test"))
    return spans


def test_a_span_links_to_the_span_of_each_context_that_has_one(
    monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter
) -> None:
    monkeypatch.setattr(telemetry, "recording", True)
    carried = []
    for name in ("first", "second"):
        with telemetry.tracer.start_as_current_span(name) as span:
            carried.append((span, telemetry.kafka_headers(span)))
    contexts = [telemetry.context_of_record(headers) for _, headers in carried]

    with telemetry.span("prefetch", {}, links=[*contexts, telemetry.context_of_record([])]):
        pass

    [prefetch] = [s for s in exporter.get_finished_spans() if s.name == "prefetch"]
    assert [link.context.span_id for link in prefetch.links] == [
        span.get_span_context().span_id for span, _ in carried
    ], "one link per context with a span; none for the context without"


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_while_tracing_is_off_no_span_starts_and_the_context_passes_through(
    exporter: InMemorySpanExporter,
) -> None:
    incoming = telemetry.context_of_record([("traceparent", TRACEPARENT.encode())])

    with telemetry.span("process", {}, context=incoming) as current:
        assert telemetry.current_context() == {"traceparent": TRACEPARENT}, "the event's trace"
        assert not current.is_recording()
        with telemetry.span("outbox", {}):
            written = telemetry.current_context()
    assert telemetry.current_context() == {}, "the block's context ends with it"
    span, headers = telemetry.publish_span("orders", written)

    assert headers == [("traceparent", TRACEPARENT.encode())], "carried on as it was written"
    assert not span.is_recording()
    assert telemetry.publish_span("orders", None)[1] == [], "no trace, no headers"
    assert exporter.get_finished_spans() == (), "nothing started, so nothing to export"


def test_while_tracing_is_on_a_publish_is_a_span_of_the_writers_trace(
    monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter
) -> None:
    monkeypatch.setattr(telemetry, "recording", True)

    span, headers = telemetry.publish_span("orders", {"traceparent": TRACEPARENT})
    span.end()

    [published] = exporter.get_finished_spans()
    assert published.name == "publish orders"
    assert published.parent is not None and f"{published.parent.span_id:016x}" in TRACEPARENT
    carried = trace.get_current_span(telemetry.context_of_record(headers)).get_span_context()
    assert carried.span_id == published.context.span_id, "the headers carry the publish span"


def test_no_span_means_no_headers_and_an_empty_context() -> None:
    assert telemetry.current_context() == {}
    assert telemetry.trace_ids() is None


def test_after_commit_runs_once_on_commit_and_never_after_a_rollback() -> None:
    engine = sa.create_engine("sqlite://")
    calls: list[str] = []
    with Session(engine) as session:
        with session.begin():
            after_commit(session, lambda: calls.append("committed"))  # type: ignore[arg-type]
        assert calls == ["committed"]
        with session.begin():
            after_commit(session, lambda: calls.append("rolled back"))  # type: ignore[arg-type]
            session.rollback()
        with session.begin():
            pass
    assert calls == ["committed"]


def test_without_an_exporter_configured_tracing_is_off(monkeypatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("TRACES_DIR", raising=False)
    settings = ServiceSettings(database_url="postgresql+asyncpg://x/y", port=1)
    assert telemetry.configure_tracing("order", settings) is None
