"""The saga under failure: a service SIGKILLed mid-burst, a service down past the saga timeout."""

import asyncio
import signal
import uuid

import pytest

from devstack.invariants import settle
from devstack.scenarios import Scenarios

from .conftest import SAGA_TIMEOUT_SECONDS, place_until_accepted

pytestmark = pytest.mark.e2e

CLEAN_EXIT = "Application shutdown complete."


@pytest.mark.parametrize("victim", ["payment", "inventory", "order"])
async def test_a_service_killed_mid_burst_loses_no_order(stack, client, victim):
    scenarios = Scenarios(client, tag=f"kill-{victim}-{uuid.uuid4().hex[:4]}")
    await scenarios.seed()
    customers = [scenarios.customer(n) for n in ("alice", "bob", "carol", "dave")]

    async def burst() -> None:
        await asyncio.gather(
            *(
                place_until_accepted(scenarios, customers[i % 4], [(scenarios.widget, 1)])
                for i in range(40)
            )
        )

    placing = asyncio.create_task(burst())
    await asyncio.sleep(0.3)
    await asyncio.to_thread(stack.kill, victim)
    await asyncio.sleep(1)
    await asyncio.to_thread(stack.start_service, victim)
    await placing
    assert len(scenarios.orders) == 40
    assert (await settle(client, timeout=90)).violations == []


async def test_late_results_after_a_timeout_are_compensated(stack, client):
    scenarios = Scenarios(client, tag=f"late-{uuid.uuid4().hex[:6]}")
    await scenarios.seed()
    await asyncio.to_thread(stack.stop_service, "payment")
    try:
        order_id = await scenarios.place(scenarios.customer("alice"), [(scenarios.widget, 2)])
        order = await client.wait_terminal(order_id, timeout=SAGA_TIMEOUT_SECONDS + 20)
        assert (order["status"], order["reason"]) == ("CANCELLED", "TIMEOUT")
    finally:
        await asyncio.to_thread(stack.start_service, "payment")
    # Payment now charges (late) and then refunds, because OrderCancelled follows.
    assert (await settle(client)).violations == []
    steps = [entry["step"] for entry in (await scenarios.wait_for_history(order_id))["history"]]
    assert steps.count("OrderCancelled") == 1
    assert {"PaymentSucceeded", "PaymentRefunded", "StockReleased"} <= set(steps)
    assert [p["kind"] for p in await client.payments(order_id)] == ["charge", "refund"]


@pytest.mark.parametrize("victim", ["inventory", "order"])
async def test_sigterm_mid_burst_stops_promptly_and_loses_nothing(stack, client, victim):
    scenarios = Scenarios(client, tag=f"term-{victim}-{uuid.uuid4().hex[:4]}")
    await scenarios.seed()
    customers = [scenarios.customer(n) for n in ("alice", "bob", "dave")]
    placing = asyncio.gather(
        *(
            place_until_accepted(scenarios, customers[i % 3], [(scenarios.widget, 1)])
            for i in range(30)
        )
    )
    await asyncio.sleep(0.3)
    clean_exits = stack.log_path(victim).read_text().count(CLEAN_EXIT)
    started = asyncio.get_running_loop().time()
    status = await asyncio.to_thread(stack.stop_service, victim)
    stopped_in = asyncio.get_running_loop().time() - started
    await asyncio.to_thread(stack.start_service, victim)
    await placing
    # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean exit too.
    assert status in (0, -signal.SIGTERM), f"{victim} was killed (status {status})"
    assert stack.log_path(victim).read_text().count(CLEAN_EXIT) == clean_exits + 1
    assert stopped_in < 8
    assert (await settle(client, timeout=90)).violations == []
