"""The products API and the consumer, end to end through the real database and broker."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel

from shared_contracts import Envelope, Topic
from shared_contracts.order import v1 as order_v1

pytestmark = pytest.mark.integration

Publish = Callable[[str, str, BaseModel], Awaitable[Envelope]]


def new_sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10]}"


async def put(client: httpx.AsyncClient, sku: str, stock: int, **body: Any) -> httpx.Response:
    body = {"name": f"Product {sku}", "unit_price_cents": 250, "stock": stock, **body}
    return await client.put(f"/v1/products/{sku}", json=body)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.1)


class TestPutAndGet:
    async def test_put_creates_a_product_that_get_returns(
        self, service_client: httpx.AsyncClient
    ) -> None:
        sku = new_sku()
        response = await put(service_client, sku, 7)
        expected = {
            "sku": sku,
            "name": f"Product {sku}",
            "unit_price_cents": 250,
            "available": 7,
            "reserved": 0,
            "sold": 0,
            "received": 7,
        }
        assert (response.status_code, response.json()) == (200, expected)
        fetched = await service_client.get(f"/v1/products/{sku}")
        assert (fetched.status_code, fetched.json()) == (200, expected)

    async def test_put_again_replaces_name_price_and_stock(
        self, service_client: httpx.AsyncClient
    ) -> None:
        sku = new_sku()
        await put(service_client, sku, 7)
        response = await put(service_client, sku, 3, name="Renamed", unit_price_cents=0)
        assert response.status_code == 200
        assert response.json() | {"sku": sku} == {
            "sku": sku,
            "name": "Renamed",
            "unit_price_cents": 0,
            "available": 3,
            "reserved": 0,
            "sold": 0,
            "received": 3,
        }

    async def test_each_put_publishes_product_updated_with_a_new_version(
        self, service_client: httpx.AsyncClient, broker: str
    ) -> None:
        sku = new_sku()
        await put(service_client, sku, 1)
        await put(service_client, sku, 2, name="Second")
        events = await read_keyed(broker, Topic.PRODUCT_EVENTS, sku, count=2)
        assert [(e.event_type, e.payload) for e in events] == [
            (
                "ProductUpdated",
                {"sku": sku, "name": f"Product {sku}", "unit_price_cents": 250, "version": 1},
            ),
            (
                "ProductUpdated",
                {"sku": sku, "name": "Second", "unit_price_cents": 250, "version": 2},
            ),
        ]

    async def test_concurrent_puts_of_a_new_sku_all_succeed(
        self, service_client: httpx.AsyncClient
    ) -> None:
        sku = new_sku()
        responses = await asyncio.gather(*(put(service_client, sku, n) for n in range(5)))
        assert [r.status_code for r in responses] == [200] * 5

    async def test_a_whole_number_written_with_a_point_is_that_integer(
        self, service_client: httpx.AsyncClient
    ) -> None:
        # What the OpenAPI document promises: JSON Schema's `integer` includes 2.0.
        body = {"name": "Whole", "unit_price_cents": 250.0, "stock": 2.0}
        response = await service_client.put(f"/v1/products/{new_sku()}", json=body)
        assert response.status_code == 200
        assert (response.json()["unit_price_cents"], response.json()["available"]) == (250, 2)

    async def test_an_unknown_sku_is_404(self, service_client: httpx.AsyncClient) -> None:
        response = await service_client.get(f"/v1/products/{new_sku()}")
        assert response.status_code == 404
        assert "unknown product" in response.json()["detail"]


class TestList:
    async def test_pages_visit_every_product_once_in_sku_order(
        self, service_client: httpx.AsyncClient
    ) -> None:
        prefix = new_sku()
        mine = [f"{prefix}-{n:02d}" for n in range(7)]
        for n, sku in enumerate(reversed(mine)):
            await put(service_client, sku, n)
        seen: list[str] = []
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 3} | ({"after": after} if after else {})
            response = await service_client.get("/v1/products", params=params)
            assert response.status_code == 200
            page = response.json()
            skus = [p["sku"] for p in page["products"]]
            assert len(skus) <= 3
            for p in page["products"]:
                assert p["available"] + p["reserved"] + p["sold"] == p["received"]
            seen += skus
            if page["next"] is None:
                break
            assert page["next"] == skus[-1]
            after = page["next"]
        assert seen == sorted(set(seen))  # strictly increasing: each product once, in order
        assert set(mine) <= set(seen)

    async def test_a_page_after_a_sku_starts_strictly_after_it(
        self, service_client: httpx.AsyncClient
    ) -> None:
        prefix = new_sku()
        for n in range(3):
            await put(service_client, f"{prefix}-{n}", 10 + n)
        response = await service_client.get(
            "/v1/products", params={"after": f"{prefix}-0", "limit": 2}
        )
        assert response.status_code == 200
        page = response.json()
        assert [p["sku"] for p in page["products"]][:2] == [f"{prefix}-1", f"{prefix}-2"]
        assert page["products"][0] == {
            "sku": f"{prefix}-1",
            "name": f"Product {prefix}-1",
            "unit_price_cents": 250,
            "available": 11,
            "reserved": 0,
            "sold": 0,
            "received": 11,
        }

    async def test_the_last_page_has_no_next(self, service_client: httpx.AsyncClient) -> None:
        response = await service_client.get("/v1/products", params={"after": "zzzz"})
        assert (response.status_code, response.json()) == (200, {"products": [], "next": None})

    async def test_the_default_page_holds_up_to_100(
        self, service_client: httpx.AsyncClient
    ) -> None:
        await put(service_client, new_sku(), 1)
        response = await service_client.get("/v1/products")
        assert response.status_code == 200
        assert 1 <= len(response.json()["products"]) <= 100

    @pytest.mark.parametrize(
        "params",
        [
            {"limit": 0},
            {"limit": 1001},
            {"limit": -1},
            {"limit": "ten"},
            {"limit": 1.5},
            {"after": ""},
            {"after": "has space"},
            {"after": "x" * 65},
        ],
    )
    async def test_bad_paging_is_422(
        self, service_client: httpx.AsyncClient, params: dict[str, str | int | float]
    ) -> None:
        response = await service_client.get("/v1/products", params=params)
        assert response.status_code == 422


BAD_BODIES = {
    "negative price": {"name": "x", "unit_price_cents": -1, "stock": 1},
    "negative stock": {"name": "x", "unit_price_cents": 1, "stock": -1},
    "fractional price": {"name": "x", "unit_price_cents": 1.5, "stock": 1},
    "fractional stock": {"name": "x", "unit_price_cents": 1, "stock": 1.5},
    "string price": {"name": "x", "unit_price_cents": "10", "stock": 1},
    "string stock": {"name": "x", "unit_price_cents": 1, "stock": "ten"},
    "boolean stock": {"name": "x", "unit_price_cents": 1, "stock": True},
    "empty name": {"name": "", "unit_price_cents": 1, "stock": 1},
    "long name": {"name": "x" * 201, "unit_price_cents": 1, "stock": 1},
    "number name": {"name": 5, "unit_price_cents": 1, "stock": 1},
    "missing stock": {"name": "x", "unit_price_cents": 1},
    "huge stock": {"name": "x", "unit_price_cents": 1, "stock": 2**63},
    "stock over the bound": {"name": "x", "unit_price_cents": 1, "stock": 10**9 + 1},
    "price over the bound": {"name": "x", "unit_price_cents": 10**10 + 1, "stock": 1},
    "NUL in name": {"name": "a\x00b", "unit_price_cents": 1, "stock": 1},
    "newline in name": {"name": "a\nb", "unit_price_cents": 1, "stock": 1},
    "not an object": ["x", 1, 1],
}
BAD_SKUS = ["x" * 65, "has space", "bad!sku", "é"]


class TestBadInput:
    @pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
    async def test_a_bad_body_is_422_and_creates_nothing(
        self, service_client: httpx.AsyncClient, body: Any
    ) -> None:
        sku = new_sku()
        response = await service_client.put(f"/v1/products/{sku}", json=body)
        assert response.status_code == 422
        assert response.json()["detail"]
        assert (await service_client.get(f"/v1/products/{sku}")).status_code == 404

    async def test_a_body_that_is_not_json_is_422(self, service_client: httpx.AsyncClient) -> None:
        response = await service_client.put(f"/v1/products/{new_sku()}", content=b"{not json")
        assert response.status_code == 422

    @pytest.mark.parametrize("sku", BAD_SKUS)
    async def test_a_bad_sku_is_422(self, service_client: httpx.AsyncClient, sku: str) -> None:
        body = {"name": "x", "unit_price_cents": 1, "stock": 1}
        assert (await service_client.put(f"/v1/products/{sku}", json=body)).status_code == 422
        assert (await service_client.get(f"/v1/products/{sku}")).status_code == 422

    async def test_a_bad_put_leaves_an_existing_product_alone(
        self, service_client: httpx.AsyncClient
    ) -> None:
        sku = new_sku()
        created = (await put(service_client, sku, 4)).json()
        assert (await put(service_client, sku, -4)).status_code == 422
        assert (await service_client.get(f"/v1/products/{sku}")).json() == created


class TestSagaThroughTheBroker:
    async def test_orders_reserve_sell_and_release_and_put_keeps_held_units(
        self, service_client: httpx.AsyncClient, broker: str, publish: Publish
    ) -> None:
        sku = new_sku()
        await put(service_client, sku, 10)
        kept, cancelled = uuid.uuid4(), uuid.uuid4()

        await publish(Topic.ORDER_EVENTS, str(kept), order_created(kept, sku, 3))
        await publish(Topic.ORDER_EVENTS, str(cancelled), order_created(cancelled, sku, 2))
        await eventually(lambda: stock_is(service_client, sku, available=5, reserved=5, sold=0))

        # A restock sets the units on hand; units held for orders in flight stay held.
        await put(service_client, sku, 20)
        await publish(Topic.ORDER_EVENTS, str(kept), order_v1.OrderConfirmed(order_id=kept))
        await publish(
            Topic.ORDER_EVENTS,
            str(cancelled),
            order_v1.OrderCancelled(order_id=cancelled, reason="TIMEOUT"),
        )
        await eventually(lambda: stock_is(service_client, sku, available=22, reserved=0, sold=3))

        results = await read_keyed(broker, Topic.INVENTORY_EVENTS, str(cancelled), count=2)
        assert [e.event_type for e in results] == ["StockReserved", "StockReleased"]
        assert results[1].payload["items"] == [{"sku": sku, "quantity": 2}]

    async def test_an_order_for_too_many_units_fails_with_out_of_stock(
        self, service_client: httpx.AsyncClient, broker: str, publish: Publish
    ) -> None:
        sku, order_id = new_sku(), uuid.uuid4()
        await put(service_client, sku, 1)
        await publish(Topic.ORDER_EVENTS, str(order_id), order_created(order_id, sku, 2))
        [result] = await read_keyed(broker, Topic.INVENTORY_EVENTS, str(order_id), count=1)
        assert result.event_type == "StockReservationFailed"
        assert result.payload | {"order_id": None} == {
            "order_id": None,
            "reason": "OUT_OF_STOCK",
            "skus": [sku],
        }
        assert await stock_is(service_client, sku, available=1, reserved=0, sold=0)


def order_created(order_id: uuid.UUID, sku: str, quantity: int) -> order_v1.OrderCreated:
    line = order_v1.OrderLine(sku=sku, quantity=quantity, unit_price_cents=250)
    return order_v1.OrderCreated(
        order_id=order_id, customer_id="c1", items=[line], total_cents=250 * quantity
    )


async def stock_is(
    client: httpx.AsyncClient, sku: str, *, available: int, reserved: int, sold: int
) -> bool:
    body = (await client.get(f"/v1/products/{sku}")).json()
    return (body["available"], body["reserved"], body["sold"]) == (available, reserved, sold)


async def read_keyed(broker: str, topic: str, key: str, count: int) -> list[Envelope]:
    """The first `count` events with Kafka key `key` on `topic`, waiting for them to arrive."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=broker, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[Envelope] = []
    try:
        async with asyncio.timeout(20):
            while len(found) < count:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    found += [
                        Envelope.model_validate_json(r.value)
                        for r in records
                        if r.key == key.encode() and r.value is not None
                    ]
    finally:
        await consumer.stop()
    return found[:count]
