import asyncio
import uuid
from datetime import datetime
from typing import Any

import pytest

from shared_contracts import Topic
from shared_contracts.inventory.v1 import (
    ProductUpdated,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)
from shared_contracts.payment.v1 import (
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    PaymentVoided,
)

from ..conftest import eventually

pytestmark = pytest.mark.integration


def order_body(sku: str, quantity: int = 2, customer: str = "alice") -> dict[str, Any]:
    return {"customer_id": customer, "items": [{"sku": sku, "quantity": quantity}]}


async def status_of(client, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/orders/{order_id}")
    assert response.status_code == 200
    return response.json()


async def test_an_order_is_priced_from_the_replica_and_pending(client, product):
    sku = await product(price=250)
    response = await client.post("/v1/orders", json=order_body(sku, 3))
    assert response.status_code == 202
    order = response.json()
    assert order["status"] == "PENDING"
    assert order["total_cents"] == 750
    assert order["items"] == [{"sku": sku, "quantity": 3, "unit_price_cents": 250}]
    assert [step["step"] for step in order["history"]] == ["OrderCreated"]


async def test_the_replica_ignores_an_older_product_version(client, product, publish):
    sku = await product(price=300, version=2)
    await publish(
        Topic.PRODUCT_EVENTS,
        sku,
        ProductUpdated(sku=sku, name="old", unit_price_cents=1, version=1),
    )
    newer = await product(price=400, version=3, sku=sku)
    assert (await client.get(f"/v1/catalog/{newer}")).json()["unit_price_cents"] == 400


@pytest.mark.parametrize(
    "body",
    [
        {"customer_id": "alice", "items": []},
        {"customer_id": "alice", "items": [{"sku": "x", "quantity": 0}]},
        {"customer_id": "alice", "items": [{"sku": "x", "quantity": 1.5}]},
        {"customer_id": "alice", "items": [{"sku": "x", "quantity": 1_000_001}]},
        {"customer_id": "alice", "items": [{"sku": "x", "quantity": "2"}]},
        {"customer_id": "", "items": [{"sku": "x", "quantity": 1}]},
        {"customer_id": "a b", "items": [{"sku": "x", "quantity": 1}]},
        {"items": [{"sku": "x", "quantity": 1}]},
        {"customer_id": "alice"},
        {"customer_id": "alice", "items": [{"sku": "x", "quantity": 1, "price": 1}]},
        [],
    ],
)
async def test_bad_order_requests_are_refused_with_422(client, body):
    response = await client.post("/v1/orders", json=body)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()


async def test_unknown_skus_are_refused_and_nothing_is_written(client, product):
    sku = await product()
    response = await client.post(
        "/v1/orders",
        json={
            "customer_id": "bob",
            "items": [{"sku": sku, "quantity": 1}, {"sku": "nope", "quantity": 1}],
        },
        headers={"Idempotency-Key": "k-unknown"},
    )
    assert response.status_code == 422
    assert "nope" in response.json()["detail"]
    # The key was not consumed by the refused request.
    retry = await client.post(
        "/v1/orders", json=order_body(sku), headers={"Idempotency-Key": "k-unknown"}
    )
    assert retry.status_code == 202


async def test_unknown_and_malformed_order_ids(client):
    assert (await client.get(f"/v1/orders/{uuid.uuid4()}")).status_code == 404
    assert (await client.get("/v1/orders/not-a-uuid")).status_code == 422
    assert (await client.post(f"/v1/orders/{uuid.uuid4()}/cancel")).status_code == 404
    assert (await client.get("/v1/catalog/unknown-sku")).status_code == 404


async def test_same_idempotency_key_and_body_returns_one_order_even_when_racing(client, product):
    sku = await product()
    key = f"key-{uuid.uuid4()}"
    responses = await asyncio.gather(
        *(
            client.post("/v1/orders", json=order_body(sku), headers={"Idempotency-Key": key})
            for _ in range(8)
        )
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["order_id"] for r in responses}) == 1


async def intake_batches(client) -> tuple[float, float]:
    """(transactions, orders) the intake has placed so far, from `/metrics`."""
    found = {}
    for line in (await client.get("/metrics")).text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("order_intake_batch_size_count", "order_intake_batch_size_sum"):
            found[name] = float(value)
    return found["order_intake_batch_size_count"], found["order_intake_batch_size_sum"]


async def test_orders_placed_at_once_share_a_transaction_and_each_gets_its_own_answer(
    client, product
):
    sku, key, reused = await product(price=100), f"key-{uuid.uuid4()}", f"key-{uuid.uuid4()}"
    requests = [
        *((order_body(sku, n, customer=f"c{n}"), None) for n in range(1, 13)),
        (order_body("no-such-sku"), None),
        (order_body(sku, 1, customer="repeat"), key),
        (order_body(sku, 1, customer="repeat"), key),
        (order_body(sku, 1, customer="first"), reused),
        (order_body(sku, 2, customer="first"), reused),
    ]
    before = await intake_batches(client)
    responses = await asyncio.gather(
        *(
            client.post("/v1/orders", json=body, headers={"Idempotency-Key": k} if k else {})
            for body, k in requests
        )
    )
    after = await intake_batches(client)
    transactions, placed = after[0] - before[0], after[1] - before[1]
    assert placed == len(requests)
    assert transactions < len(requests) / 2, "the requests were not placed together"

    statuses = [r.status_code for r in responses]
    assert statuses[:12] == [202] * 12
    assert statuses[12] == 422 and "no-such-sku" in responses[12].json()["detail"]
    assert statuses[13:15] == [202, 202]
    assert responses[13].json()["order_id"] == responses[14].json()["order_id"]
    assert sorted(statuses[15:]) == [202, 409]  # one body won the key, the other is refused
    distinct = {r.json()["order_id"] for r in responses[:12]}
    assert len(distinct) == 12
    for n, response in enumerate(responses[:12], start=1):
        order = await status_of(client, response.json()["order_id"])
        assert (order["customer_id"], order["total_cents"], order["status"]) == (
            f"c{n}",
            100 * n,
            "PENDING",
        )


async def test_same_idempotency_key_with_another_body_is_refused(client, product):
    sku = await product()
    key = f"key-{uuid.uuid4()}"
    first = await client.post(
        "/v1/orders", json=order_body(sku, 1), headers={"Idempotency-Key": key}
    )
    assert first.status_code == 202
    second = await client.post(
        "/v1/orders", json=order_body(sku, 2), headers={"Idempotency-Key": key}
    )
    assert second.status_code == 409
    # The body is checked before the key: a repeat is found by its insert failing.
    unknown = await client.post(
        "/v1/orders", json=order_body("no-such-sku"), headers={"Idempotency-Key": key}
    )
    assert unknown.status_code == 422


async def place(client, product) -> str:
    sku = await product(price=100)
    response = await client.post("/v1/orders", json=order_body(sku, 1))
    return response.json()["order_id"]


async def test_payment_and_stock_success_confirm_the_order(client, product, publish):
    order_id = await place(client, product)
    oid = uuid.UUID(order_id)
    await publish(Topic.INVENTORY_EVENTS, order_id, StockReserved(order_id=oid, items=[]))
    await publish(
        Topic.PAYMENT_EVENTS,
        order_id,
        PaymentSucceeded(order_id=oid, customer_id="alice", amount_cents=100),
    )

    async def confirmed() -> bool:
        return (await status_of(client, order_id))["status"] == "CONFIRMED"

    await eventually(confirmed)
    steps = [s["step"] for s in (await status_of(client, order_id))["history"]]
    assert steps[0] == "OrderCreated" and steps[-1] == "OrderConfirmed"


@pytest.mark.parametrize(
    ("topic", "failure", "reason"),
    [
        (Topic.PAYMENT_EVENTS, "payment", "PAYMENT_DECLINED"),
        (Topic.INVENTORY_EVENTS, "stock", "OUT_OF_STOCK"),
    ],
)
async def test_a_failure_cancels_with_its_reason(client, product, publish, topic, failure, reason):
    order_id = await place(client, product)
    oid = uuid.UUID(order_id)
    event = (
        PaymentFailed(order_id=oid, customer_id="alice", reason="INSUFFICIENT_FUNDS")
        if failure == "payment"
        else StockReservationFailed(order_id=oid, reason="OUT_OF_STOCK", skus=["x"])
    )
    await publish(topic, order_id, event)

    async def cancelled() -> bool:
        order = await status_of(client, order_id)
        return order["status"] == "CANCELLED" and order["reason"] == reason

    await eventually(cancelled)


async def test_customer_cancellation_then_compensation_is_recorded(client, product, publish):
    order_id = await place(client, product)
    response = await client.post(f"/v1/orders/{order_id}/cancel")
    assert response.status_code == 202
    assert response.json()["reason"] == "CUSTOMER_CANCELLED"
    assert (await client.post(f"/v1/orders/{order_id}/cancel")).status_code == 409
    await publish(
        Topic.PAYMENT_EVENTS,
        order_id,
        PaymentRefunded(order_id=uuid.UUID(order_id), customer_id="alice", amount_cents=100),
    )

    async def refunded() -> bool:
        steps = [s["step"] for s in (await status_of(client, order_id))["history"]]
        return steps[-1] == "PaymentRefunded"

    await eventually(refunded)


async def test_a_stale_pending_order_times_out(client, product):
    order_id = await place(client, product)

    async def timed_out() -> bool:
        order = await status_of(client, order_id)
        return order["status"] == "CANCELLED" and order["reason"] == "TIMEOUT"

    await eventually(timed_out, timeout=10)


async def test_a_decision_is_sent_again_until_both_services_answer(client, product, publish):
    # Nobody answers this order: it times out after 2 s and the cancellation goes out
    # again, as it would if the broker had lost the first one, 2 s later, then 4 s after
    # that (each wait doubles), until both answer.
    order_id = await place(client, product)

    async def resent() -> bool:
        order = await status_of(client, order_id)
        return [s["step"] for s in order["history"]].count("DecisionResent") >= 2

    await eventually(resent, timeout=15)
    order = await status_of(client, order_id)
    assert order["awaiting"] == ["payment", "inventory"]
    assert order["history"][-1]["decision"] == "OrderCancelled"
    cancelled, first, second = [
        datetime.fromisoformat(s["at"])
        for s in order["history"]
        if s["step"] in {"OrderCancelled", "DecisionResent"}
    ][:3]
    assert (first - cancelled).total_seconds() >= 2
    assert (second - first).total_seconds() >= 4

    voided = PaymentVoided(order_id=uuid.UUID(order_id))
    await publish(Topic.PAYMENT_EVENTS, order_id, voided)
    await publish(
        Topic.INVENTORY_EVENTS, order_id, StockReleased(order_id=voided.order_id, items=[])
    )

    async def answered() -> bool:
        return (await status_of(client, order_id))["awaiting"] == []

    await eventually(answered)
    steps = [s["step"] for s in (await status_of(client, order_id))["history"]]
    await asyncio.sleep(3)  # longer than the saga timeout: no further re-send
    assert [s["step"] for s in (await status_of(client, order_id))["history"]] == steps
