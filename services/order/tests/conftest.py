import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from order_service.main import create_app
from order_service.settings import Settings
from shared_contracts import Envelope, Topic
from shared_contracts.inventory.v1 import ProductUpdated


@pytest.fixture(scope="session")
async def client(database_url, broker) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=database_url("order"),
        kafka_bootstrap_servers=broker,
        port=0,
        kafka_group_id=f"order-{uuid.uuid4().hex[:8]}",
        saga_timeout_seconds=2,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://order") as c,
    ):
        yield c


@pytest.fixture(scope="session")
async def publish(broker) -> AsyncIterator[Callable[[str, str, BaseModel], Awaitable[Envelope]]]:
    """Publish an event the way another service's relay would."""
    producer = AIOKafkaProducer(bootstrap_servers=broker)
    await producer.start()

    async def send(topic: str, key: str, payload: BaseModel) -> Envelope:
        envelope = Envelope(
            event_id=uuid.uuid4(),
            event_type=type(payload).__name__,
            event_version=1,
            occurred_at=datetime.now(UTC),
            producer="test",
            aggregate_id=key,
            payload=payload.model_dump(mode="json"),
        )
        await producer.send_and_wait(topic, envelope.model_dump_json().encode(), key=key.encode())
        return envelope

    yield send
    await producer.stop()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Wait until `check()` is true: events take a moment to travel."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture(scope="session")
async def product(client, publish) -> Callable[..., Awaitable[str]]:
    """Put a product in the order service's catalog replica, through the real topic."""

    async def make(price: int = 250, version: int = 1, sku: str | None = None) -> str:
        sku = sku or f"sku-{uuid.uuid4().hex[:8]}"
        await publish(
            Topic.PRODUCT_EVENTS,
            sku,
            ProductUpdated(sku=sku, name=f"Product {sku}", unit_price_cents=price, version=version),
        )

        async def replicated() -> bool:
            response = await client.get(f"/v1/catalog/{sku}")
            return response.status_code == 200 and response.json()["unit_price_cents"] == price

        await eventually(replicated)
        return sku

    return make
