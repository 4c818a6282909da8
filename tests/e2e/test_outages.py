"""Outages of the infrastructure: a service's PostgreSQL stopped, the broker restarted.

The services are not restarted: they must notice, report not-ready, refuse what needs
the missing piece with a 503, and recover by themselves once it is back.
"""

import asyncio
import uuid

import pytest

from devstack.client import SagaClient
from devstack.invariants import settle
from devstack.scenarios import Scenarios
from devstack.stack import Stack

from .conftest import SAGA_TIMEOUT_SECONDS, place_until_accepted

pytestmark = pytest.mark.e2e

ORDERS = 30
PLACING_SECONDS = 8.0
OUTAGE_SECONDS = 4.0
RECOVERY_SECONDS = 20.0


def place_in_background(scenarios: Scenarios) -> "asyncio.Future[list[str]]":
    """`ORDERS` orders spread over `PLACING_SECONDS`, each retried until accepted."""
    customers = [scenarios.customer(n) for n in ("alice", "bob", "dave")]

    async def one(i: int) -> str:
        await asyncio.sleep(i * PLACING_SECONDS / ORDERS)
        return await place_until_accepted(scenarios, customers[i % 3], [(scenarios.widget, 1)])

    return asyncio.gather(*(one(i) for i in range(ORDERS)))


async def wait_ready_status(client: SagaClient, svc: str, status: int, timeout: float) -> float:
    """Poll `svc`'s /health/ready until it answers `status`; return how long that took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(timeout):
        while (await client.request(svc, "GET", "/health/ready")).status_code != status:
            await asyncio.sleep(0.1)
    return loop.time() - started


def db_backed_path(svc: str, scenarios: Scenarios) -> str:
    """A GET of `svc` that must read its database."""
    if svc == "inventory":
        return f"/v1/products/{scenarios.widget}"
    return f"/v1/accounts/{scenarios.customer('alice')}"


@pytest.mark.parametrize("victim", ["inventory", "payment"])
async def test_a_database_outage_is_survived(stack: Stack, client: SagaClient, victim: str) -> None:
    scenarios = Scenarios(client, tag=f"pg-{victim}-{uuid.uuid4().hex[:4]}")
    await scenarios.seed()
    placing = place_in_background(scenarios)
    await asyncio.sleep(1)
    await asyncio.to_thread(stack.postgres(victim).stop)
    try:
        await wait_ready_status(client, victim, 503, timeout=5)
        response = await client.request(victim, "GET", db_backed_path(victim, scenarios))
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1"
        assert "detail" in response.json()
        # The other services keep working.
        for other in ("order", "inventory", "payment"):
            if other != victim:
                await wait_ready_status(client, other, 200, timeout=5)
        await asyncio.sleep(OUTAGE_SECONDS)
    finally:
        await asyncio.to_thread(stack.postgres(victim).start)
    await wait_ready_status(client, victim, 200, timeout=RECOVERY_SECONDS)
    assert (
        await client.request(victim, "GET", db_backed_path(victim, scenarios))
    ).status_code == 200
    assert len(await placing) == ORDERS
    assert (await settle(client, timeout=90)).violations == []


async def test_a_broker_restart_is_survived(stack: Stack, client: SagaClient) -> None:
    scenarios = Scenarios(client, tag=f"broker-{uuid.uuid4().hex[:4]}")
    await scenarios.seed()
    placing = place_in_background(scenarios)
    await asyncio.sleep(1)
    await asyncio.to_thread(stack.broker.stop)
    try:
        # Orders are still accepted: their events wait in the order service's outbox.
        for _ in range(3):
            response = await client.place_order(
                scenarios.customer("alice"), [(scenarios.widget, 1)]
            )
            assert response.status_code == 202, response.text
            scenarios.orders.append(response.json()["order_id"])
        await wait_ready_status(client, "order", 503, timeout=10)
        await asyncio.sleep(OUTAGE_SECONDS)
    finally:
        await asyncio.to_thread(stack.restart_broker)
    for svc in ("order", "inventory", "payment"):
        await wait_ready_status(client, svc, 200, timeout=RECOVERY_SECONDS)
    assert len(await placing) == ORDERS
    # Events lost with the broker's memory leave orders PENDING until the saga timeout.
    report = await settle(client, timeout=SAGA_TIMEOUT_SECONDS + 80)
    assert report.violations == []
    # And the system works normally again.
    order_id = await scenarios.place(scenarios.customer("bob"), [(scenarios.widget, 1)])
    assert (await client.wait_terminal(order_id, timeout=30))["status"] == "CONFIRMED"
