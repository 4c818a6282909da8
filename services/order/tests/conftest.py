"""Fixtures of the order service's tests, on top of the root `broker`, `database_url`, `serve`."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from order_service.main import create_app
from order_service.settings import Settings
from shared_contracts import Topic
from shared_contracts.inventory.v1 import ProductUpdated


def order_settings(database_url: str, broker: str, **overrides: object) -> Settings:
    """Settings of an order service on `database_url` with a 2 s saga timeout."""
    fields: dict[str, object] = {
        "database_url": database_url,
        "kafka_bootstrap_servers": broker,
        "port": 0,
        "kafka_group_id": f"order-{uuid.uuid4().hex[:8]}",
        "saga_timeout_seconds": 2,
    }
    return Settings.model_validate(fields | overrides)


@pytest.fixture(scope="session")
async def client(database_url, broker, serve) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(create_app(order_settings(database_url("order"), broker))) as c:
        yield c


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
