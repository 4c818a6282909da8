"""The shipping service through the broker and its HTTP API."""

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from shared_contracts import Topic
from shared_contracts.order.v1 import CancellationReason, OrderCancelled, OrderConfirmed

pytestmark = pytest.mark.integration


async def wait_for_status(client: httpx.AsyncClient, order_id: uuid.UUID, status: str) -> Any:
    async with asyncio.timeout(20):
        while True:
            response = await client.get(f"/v1/shipments/{order_id}")
            if response.status_code == 200 and response.json()["status"] == status:
                return response.json()
            await asyncio.sleep(0.1)


async def test_a_confirmed_then_cancelled_order_is_scheduled_then_cancelled(
    client, publish, events_on_topic
):
    order_id = uuid.uuid4()

    await publish(Topic.ORDER_EVENTS, str(order_id), OrderConfirmed(order_id=order_id))
    scheduled = await wait_for_status(client, order_id, "SCHEDULED")
    reason = CancellationReason.CUSTOMER_CANCELLED
    await publish(
        Topic.ORDER_EVENTS, str(order_id), OrderCancelled(order_id=order_id, reason=reason)
    )
    cancelled = await wait_for_status(client, order_id, "CANCELLED")

    assert scheduled["order_id"] == str(order_id)
    assert scheduled["cancelled_at"] is None
    assert cancelled["shipment_id"] == scheduled["shipment_id"]
    assert cancelled["cancelled_at"] is not None
    assert await events_on_topic(Topic.SHIPMENT_EVENTS, str(order_id), 2) == [
        "ShipmentScheduled",
        "ShipmentCancelled",
    ]


async def test_an_order_without_a_shipment_is_404(client):
    response = await client.get(f"/v1/shipments/{uuid.uuid4()}")
    assert response.status_code == 404
    assert "has no shipment" in response.json()["detail"]


async def test_an_order_id_that_is_not_a_uuid_is_422(client):
    assert (await client.get("/v1/shipments/not-a-uuid")).status_code == 422
