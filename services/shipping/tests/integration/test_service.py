"""The shipping service on real PostgreSQL and the real broker: probes, metrics, the inbox."""

import asyncio
import uuid

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from chassis.db import create_engine
from chassis.kafka import create_producer
from chassis.outbox import new_envelope
from chassis.tables import processed_events
from shared_contracts.order.v1 import OrderConfirmed

pytestmark = pytest.mark.integration


async def eventually_ok(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """GET `path` until it answers 200: the clients connect to the broker in the background."""
    async with asyncio.timeout(20):
        while (response := await client.get(path)).status_code != 200:
            await asyncio.sleep(0.1)
    return response


async def test_it_is_live_and_ready_once_its_database_and_the_broker_answer(client):
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await eventually_ok(client, "/health/ready")
    assert ready.json() == {"status": "ready", "checks": {"database": True, "broker": True}}


async def test_it_serves_prometheus_metrics(client):
    await client.get("/health/live")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert "http_requests_total" in metrics.text
    assert "outbox_backlog" in metrics.text


def duplicates_seen(metrics: str) -> float:
    """How many redelivered events of the topic the consumer skipped, from `/metrics`."""
    prefix = 'events_duplicate_total{topic="orders.events"} '
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


async def inbox_has(engine: AsyncEngine, event_id: uuid.UUID) -> bool:
    """Whether the shipping consumer recorded the event in its inbox (it applied it)."""
    query = sa.select(processed_events.c.event_id).where(
        processed_events.c.consumer == "shipping", processed_events.c.event_id == event_id
    )
    async with engine.connect() as connection:
        return (await connection.execute(query)).first() is not None


async def test_an_event_on_its_topic_is_applied_and_a_redelivery_is_skipped(
    client, service_database, broker
):
    await eventually_ok(client, "/health/ready")
    before = duplicates_seen((await client.get("/metrics")).text)
    event = OrderConfirmed(order_id=uuid.uuid4())
    key = str(event.order_id)
    envelope = new_envelope("test", key, event)
    producer = create_producer(broker)
    await producer.start()
    try:
        # The same envelope twice, as a redelivery after a crash would bring it.
        for _ in range(2):
            await producer.send_and_wait(
                "orders.events", envelope.model_dump_json().encode(), key=key.encode()
            )
    finally:
        await producer.stop()

    engine = create_engine(service_database)
    try:
        async with asyncio.timeout(20):
            while not await inbox_has(engine, envelope.event_id):
                await asyncio.sleep(0.1)
            while duplicates_seen((await client.get("/metrics")).text) < before + 1:
                await asyncio.sleep(0.1)
    finally:
        await engine.dispose()
