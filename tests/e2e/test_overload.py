"""Overload: a burst far above the order service's in-flight limit is refused cleanly, and
everything accepted completes."""

import asyncio
import itertools
import random
import uuid

import httpx
import pytest

from chassis.settings import ServiceSettings
from devstack.client import TERMINAL, Json
from devstack.invariants import settle

pytestmark = pytest.mark.e2e

LIMIT: int = ServiceSettings.model_fields["max_concurrent_requests"].default
BURST = 400
"""Concurrent POST /v1/orders, each on its own connection: over six times the limit."""
MAX_EXTRA_WAIT = 4.0
"""The cap of a refused client's random extra wait, in seconds."""


async def post_order(http: httpx.AsyncClient, key: str, body: Json) -> httpx.Response:
    return await http.post("/v1/orders", json=body, headers={"Idempotency-Key": key})


async def until_accepted(http: httpx.AsyncClient, key: str, body: Json) -> str:
    """What a client should do with a 503: wait Retry-After and retry with the same key.

    Each refusal in a row widens a random extra wait (exponential backoff, full jitter),
    so that hundreds of refused clients do not come back in the same instant.
    """
    for refusals in itertools.count():
        response = await post_order(http, key, body)
        if response.status_code == 202:
            order_id: str = response.json()["order_id"]
            return order_id
        assert response.status_code == 503, response.text
        retry_after = float(response.headers["Retry-After"])
        spread = min(MAX_EXTRA_WAIT, retry_after * 2**refusals)
        await asyncio.sleep(retry_after + random.uniform(0, spread))
    raise AssertionError("unreachable")


async def test_a_burst_far_above_capacity_is_refused_with_503_and_nothing_accepted_is_lost(
    stack, client
):
    tag = f"burst-{uuid.uuid4().hex[:6]}"
    sku, customers = f"{tag}-item", [f"{tag}-c{i}" for i in range(10)]
    await client.put_product(sku, "Burst item", 100, BURST)
    for customer in customers:
        await client.put_account(customer, 1_000_000)
    bodies: dict[str, Json] = {
        str(uuid.uuid4()): {
            "customer_id": customers[i % 10],
            "items": [{"sku": sku, "quantity": 1}],
        }
        for i in range(BURST)
    }
    pid = stack.pid("order")
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=stack.url("order"), limits=limits, timeout=30) as http:
        health: list[int] = []
        probes = asyncio.create_task(probe_health(client, health))
        answers = await asyncio.gather(
            *(post_order(http, key, body) for key, body in bodies.items()), return_exceptions=True
        )
        probes.cancel()
        await asyncio.gather(probes, return_exceptions=True)

        errors = [a for a in answers if isinstance(a, BaseException)]
        assert errors == [], f"{len(errors)} requests failed: {errors[:3]}"
        codes = [a.status_code for a in answers if isinstance(a, httpx.Response)]
        refused = [a for a in answers if isinstance(a, httpx.Response) and a.status_code == 503]
        assert set(codes) <= {202, 503}, f"answers: {sorted(set(codes))}"
        assert refused, f"{BURST} at once and none refused: is the limit ({LIMIT}) in place?"
        assert all(a.headers.get("Retry-After") == "1" for a in refused)
        assert all("overloaded" in a.json()["detail"] for a in refused)
        assert health, "no health probe answered during the burst"
        assert set(health) == {200}, f"health probes during the burst: {health}"

        order_ids = await asyncio.gather(
            *(until_accepted(http, key, body) for key, body in bodies.items())
        )
    assert len(set(order_ids)) == BURST, "one order per Idempotency-Key"
    assert stack.pid("order") == pid, "the order service was restarted"
    assert (await client.request("order", "GET", "/health/ready")).status_code == 200
    await wait_all_terminal(client, order_ids, timeout=90)
    r = await settle(client, timeout=90)
    assert r.violations == []


async def probe_health(client, statuses: list[int]) -> None:
    """Ask liveness and readiness until cancelled; probes bypass the limit, so both answer."""
    while True:
        for path in ("/health/live", "/health/ready"):
            statuses.append((await client.request("order", "GET", path)).status_code)
        await asyncio.sleep(0.1)


async def wait_all_terminal(client, order_ids: list[str], timeout: float) -> None:
    pending = set(order_ids)
    async with asyncio.timeout(timeout):
        while pending:
            orders = await client.orders()
            pending -= {o["order_id"] for o in orders if o["status"] in TERMINAL}
            if pending:
                await asyncio.sleep(0.5)
