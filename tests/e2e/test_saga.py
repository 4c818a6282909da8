"""The saga over HTTP with the three services as real processes, invariants after each scenario."""

import uuid

import pytest

from devstack.invariants import settle
from devstack.scenarios import Scenarios

pytestmark = pytest.mark.e2e

SCENARIOS = [
    "happy_path",
    "out_of_stock",
    "payment_declined",
    "customer_cancellation",
    "burst_for_last_units",
]


@pytest.mark.parametrize("name", SCENARIOS)
async def test_scenario_ends_as_expected_with_invariants_intact(client, name):
    scenarios = Scenarios(client, tag=f"{name[:6]}-{uuid.uuid4().hex[:6]}")
    await scenarios.seed()
    outcomes = await getattr(scenarios, name)()
    assert [(o.order["status"], o.order["reason"]) for o in outcomes] == [
        (o.expected_status, o.expected_reason) for o in outcomes
    ]
    assert (await settle(client)).violations == []


async def test_history_shows_every_step_in_time_order(client):
    scenarios = Scenarios(client, tag=f"hist-{uuid.uuid4().hex[:6]}")
    await scenarios.seed()
    [outcome] = await scenarios.payment_declined()
    order = await scenarios.wait_for_history(outcome.order["order_id"])
    steps = [entry["step"] for entry in order["history"]]
    assert steps[0] == "OrderCreated"
    assert {"PaymentFailed", "StockReserved", "OrderCancelled", "StockReleased"} <= set(steps)
    times = [entry["at"] for entry in order["history"]]
    assert times == sorted(times)
    assert all(t.endswith(("Z", "+00:00")) for t in times)


async def test_a_repeated_idempotency_key_returns_the_same_order(client):
    scenarios = Scenarios(client, tag=f"idem-{uuid.uuid4().hex[:6]}")
    await scenarios.seed()
    customer, key = scenarios.customer("alice"), str(uuid.uuid4())
    first = await client.place_order(customer, [(scenarios.widget, 1)], idempotency_key=key)
    again = await client.place_order(customer, [(scenarios.widget, 1)], idempotency_key=key)
    other = await client.place_order(customer, [(scenarios.widget, 2)], idempotency_key=key)
    assert (first.status_code, again.status_code, other.status_code) == (202, 202, 409)
    assert first.json()["order_id"] == again.json()["order_id"]
    assert (await settle(client)).violations == []
