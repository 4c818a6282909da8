"""Admission control: placing an order is refused while too many sagas are pending."""

import asyncio
import uuid

import pytest

from order_service.main import create_app
from order_service.service_layer.admission import INTERVAL
from shared_contracts import Topic
from shared_contracts.inventory.v1 import ProductUpdated

from ..conftest import eventually, order_settings

pytestmark = pytest.mark.integration


async def test_new_orders_are_refused_while_the_backlog_is_full_and_accepted_once_it_drains(
    database_url, broker, serve, publish
):
    # Nobody answers in these tests, so each order stays PENDING until its 2 s timeout.
    settings = order_settings(database_url("order"), broker, max_pending_orders=1)
    sku = f"sku-{uuid.uuid4().hex[:8]}"
    body = {"customer_id": "alice", "items": [{"sku": sku, "quantity": 1}]}
    async with serve(create_app(settings)) as client:  # on a database of its own
        await publish(
            Topic.PRODUCT_EVENTS,
            sku,
            ProductUpdated(sku=sku, name="P", unit_price_cents=1, version=1),
        )

        async def replicated() -> bool:
            return (await client.get(f"/v1/catalog/{sku}")).status_code == 200

        await eventually(replicated)
        first = await client.post("/v1/orders", json=body)
        assert first.status_code == 202, first.text
        await asyncio.sleep(2 * INTERVAL)  # the next count sees it
        for path in ("/v1/orders", "/v2/orders"):
            v2_body = {"buyer_id": "alice", "items": body["items"]}
            refused = await client.post(path, json=body if path == "/v1/orders" else v2_body)
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "1"
            assert "orders are still pending (at most 1)" in refused.json()["detail"]
        await asyncio.sleep(3)  # it times out: the backlog drains
        assert (await client.post("/v1/orders", json=body)).status_code == 202
