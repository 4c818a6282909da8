"""One real stack for the end-to-end tests: three PostgreSQL servers, the broker, three services."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from devstack.client import SagaClient
from devstack.scenarios import Scenarios
from devstack.stack import SERVICES, Stack

from ..conftest import Shared

SAGA_TIMEOUT_SECONDS = 10


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared[Stack]]:
    def make() -> Stack:
        base: Path = tmp_path_factory.mktemp("stack")
        extra_env = {"SAGA_TIMEOUT_SECONDS": str(SAGA_TIMEOUT_SECONDS)}
        return Stack(base, free_ports=True, extra_env=extra_env)

    with Shared(make) as shared:
        yield shared


@pytest.fixture
def stack(request: pytest.FixtureRequest, shared_stack: Shared[Stack]) -> Iterator[Stack]:
    """The stack the end-to-end tests share, stopped after the last of them in a row."""
    yield from shared_stack.lend(request)


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[SagaClient]:
    async with SagaClient({svc: stack.url(svc) for svc in SERVICES}) as saga:
        yield saga


async def place_until_accepted(
    scenarios: Scenarios, customer: str, items: list[tuple[str, int]]
) -> str:
    """Place an order like a careful client: one idempotency key, retried until accepted."""
    key = str(uuid.uuid4())
    while True:
        try:
            response = await scenarios.client.place_order(customer, items, idempotency_key=key)
            if response.status_code == 202:
                order_id: str = response.json()["order_id"]
                scenarios.orders.append(order_id)
                return order_id
        except httpx.TransportError:
            pass  # the order service is down or restarting
        await asyncio.sleep(0.2)
