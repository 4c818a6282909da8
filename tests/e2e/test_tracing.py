"""One order is one trace: every span of all three services shares its id and forms one tree.

A stack of its own, whose services write their finished spans to files (`TRACES_DIR`,
the SDK's own exporter with a JSON-lines formatter), so the test reads what an OTLP
collector would receive. The client starts the trace: it sends a `traceparent` naming a
span of its own, so the order service's request span has a parent outside the stack,
and every other span must descend from that request span.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.client import SagaClient
from devstack.stack import SERVICES, Stack

pytestmark = pytest.mark.e2e

Span = dict[str, Any]

EXPECTED = {
    ("order", "POST /v1/orders"),
    ("order", "outbox OrderCreated"),
    ("order", "publish orders.events"),
    ("payment", "process orders.events"),
    ("payment", "outbox PaymentSucceeded"),
    ("payment", "publish payments.events"),
    ("inventory", "process orders.events"),
    ("inventory", "outbox StockReserved"),
    ("inventory", "publish inventory.events"),
    ("order", "process payments.events"),
    ("order", "process inventory.events"),
    ("order", "outbox OrderConfirmed"),
    ("inventory", "outbox StockSold"),
}
"""Spans the happy path must produce: the request, each outbox write, each publish, each
consumer's handling, the decision and its answer."""


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    base = tmp_path_factory.mktemp("traced-stack")
    traces = base / "traces"
    with Stack(base, free_ports=True, extra_env={"TRACES_DIR": str(traces)}) as stack:
        yield stack, traces


@pytest.fixture
async def traced_client(traced_stack: tuple[Stack, Path]) -> AsyncIterator[SagaClient]:
    stack, _ = traced_stack
    async with SagaClient({svc: stack.url(svc) for svc in SERVICES}) as client:
        yield client


def spans_of(traces: Path, trace_id: str) -> list[Span]:
    """Every finished span of `trace_id` the services have exported so far."""
    found = []
    for path in traces.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            span = json.loads(line)
            if span["context"]["trace_id"] == f"0x{trace_id}":
                found.append(span)
    return found


def service(span: Span) -> str:
    name: str = span["resource"]["attributes"]["service.name"]
    return name


async def test_one_order_is_one_trace_across_the_three_services(
    traced_stack: tuple[Stack, Path], traced_client: SagaClient
) -> None:
    _, traces = traced_stack
    sku, customer = f"traced-{uuid.uuid4().hex[:6]}", f"tracer-{uuid.uuid4().hex[:6]}"
    await traced_client.put_product(sku, "Traced", 250, 5)
    await traced_client.put_account(customer, 10_000)
    trace_id, client_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    response = await traced_client.request(
        "order",
        "POST",
        "/v1/orders",
        json={"customer_id": customer, "items": [{"sku": sku, "quantity": 2}]},
        headers={"traceparent": f"00-{trace_id}-{client_span}-01"},
    )
    assert response.status_code == 202, response.text
    order = await traced_client.wait_terminal(response.json()["order_id"])
    assert order["status"] == "CONFIRMED"

    spans: list[Span] = []

    async def all_exported() -> bool:
        nonlocal spans
        spans = spans_of(traces, trace_id)
        return {(service(s), s["name"]) for s in spans} >= EXPECTED

    try:
        await traced_client.wait_for(all_exported, timeout=30, interval=0.5)
    except TimeoutError:
        missing = EXPECTED - {(service(s), s["name"]) for s in spans}
        pytest.fail(f"never exported: {sorted(missing)}")
    await asyncio.sleep(1)  # spans that end after the last expected one, e.g. its DB calls
    spans = spans_of(traces, trace_id)

    assert {service(s) for s in spans} == {"order", "payment", "inventory"}
    ids = {s["context"]["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_id"] not in ids]
    assert [(service(r), r["name"], r["parent_id"]) for r in roots] == [
        ("order", "POST /v1/orders", f"0x{client_span}")
    ], "one tree, rooted in the request, whose parent is the client's span"
