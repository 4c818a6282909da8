"""Consumer-driven contract: payment and inventory can read what the order service publishes.

The order service's real use cases and handlers run every path of the saga on a real
database; the events they wrote to the outbox are checked against what each consumer
declares it reads (`services/*/contracts/consumes.yaml`).
"""

import copy
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.consumer import Handler
from chassis.contract_testing import (
    Published,
    deliver,
    load_expectations,
    problems,
    run_producer,
    verify,
)
from chassis.outbox import Outbox
from order_service.domain.model import Order
from order_service.service_layer import handlers
from shared_contracts.inventory import v1 as inventory
from shared_contracts.payment import v1 as payment

pytestmark = pytest.mark.integration

SERVICES = Path(__file__).parents[3]
OUTBOX = Outbox("order")
CUSTOMER = "customer-1"


async def every_path(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Confirm, decline, run out of stock, cancel, time out and re-send decisions."""
    sku = f"sku-{uuid.uuid4().hex[:8]}"
    product = inventory.ProductUpdated(sku=sku, name="Mug", unit_price_cents=250, version=1)
    await deliver(sessions, OUTBOX, handlers.on_product_updated, product)
    confirmed, declined, short = [await place(sessions, sku) for _ in range(3)]
    await place(sessions, sku)  # left pending, so that the sweep times it out
    for handler, event in answers(sku, confirmed, declined, short):
        await deliver(sessions, OUTBOX, handler, event)
    await handlers.cancel_order(sessions, OUTBOX, confirmed)
    # The sweep times out the order left pending and sends the unanswered decisions again.
    await handlers.chase_overdue_orders(sessions, OUTBOX, timedelta(0))


async def place(sessions: async_sessionmaker[AsyncSession], sku: str) -> uuid.UUID:
    [order] = await handlers.place_orders(
        sessions, OUTBOX, [handlers.Placement(CUSTOMER, [(sku, 2)])]
    )
    assert isinstance(order, Order)
    return order.order_id


def answers(
    sku: str, confirmed: uuid.UUID, declined: uuid.UUID, short: uuid.UUID
) -> list[tuple[Handler, BaseModel]]:
    """Payment's and inventory's answers that confirm, decline and fail the three orders."""
    line = inventory.ReservedLine(sku=sku, quantity=2)
    return [
        (
            handlers.on_payment_succeeded,
            payment.PaymentSucceeded(order_id=confirmed, customer_id=CUSTOMER, amount_cents=500),
        ),
        (handlers.on_stock_reserved, inventory.StockReserved(order_id=confirmed, items=[line])),
        (
            handlers.on_payment_failed,
            payment.PaymentFailed(order_id=declined, customer_id=CUSTOMER, reason="DECLINED"),
        ),
        (
            handlers.on_stock_reservation_failed,
            inventory.StockReservationFailed(order_id=short, reason="OUT_OF_STOCK", skus=[sku]),
        ),
    ]


@pytest.fixture(scope="module")
async def published(database_url) -> list[Published]:
    """What the order service wrote to its outbox on every path, on a database of its own."""
    return await run_producer(database_url("order"), every_path)


async def test_every_consumer_can_read_every_event_the_order_service_publishes(published):
    assert verify("order", published, load_expectations(SERVICES)) == []


async def test_a_change_that_breaks_a_consumer_is_caught_naming_consumer_and_field(published):
    v1, v2 = (next(p for p in published if p.event == ("OrderCreated", n)) for n in (1, 2))
    broken_v1, broken_v2 = copy.deepcopy(v1.envelope), copy.deepcopy(v2.envelope)
    broken_v1["payload"]["items"][0]["quantity"] = "2"
    del broken_v2["payload"]["total"]["currency"]

    expectations = load_expectations(SERVICES)
    found = problems(Published(v1.topic, broken_v1), expectations)
    found += problems(Published(v2.topic, broken_v2), expectations)

    assert found == [
        "inventory cannot read OrderCreated v1: payload.items[0].quantity: "
        "'2' is not of type 'integer'",
        "payment cannot read OrderCreated v2: payload.total: 'currency' is a required property",
    ]
