"""Consumer-driven contract: the order service can read what the inventory service publishes.

The inventory service's real use case and handlers change a product, reserve, refuse,
sell and release stock on a real database; the events they wrote to the outbox are
checked against what each consumer declares it reads (`services/*/contracts/consumes.yaml`).
"""

import copy
import uuid
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.contract_testing import (
    Published,
    deliver,
    load_expectations,
    problems,
    run_producer,
    verify,
)
from chassis.outbox import Outbox
from inventory_service.service_layer import handlers
from shared_contracts.order import v1 as order

pytestmark = pytest.mark.integration

SERVICES = Path(__file__).parents[3]
OUTBOX = Outbox("inventory")


def order_created(sku: str, quantity: int) -> order.OrderCreated:
    line = order.OrderLine(sku=sku, quantity=quantity, unit_price_cents=250)
    return order.OrderCreated(
        order_id=uuid.uuid4(), customer_id="c1", items=[line], total_cents=250 * quantity
    )


def cancelled(created: order.OrderCreated) -> order.OrderCancelled:
    reason = order.CancellationReason.CUSTOMER_CANCELLED
    return order.OrderCancelled(order_id=created.order_id, reason=reason)


async def every_path(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Put a product; reserve, sell and release one order; refuse and release another."""
    sku = f"SKU-{uuid.uuid4().hex[:10]}"
    async with sessions.begin() as session:
        await handlers.put_product(session, OUTBOX, sku, "Mug", 250, 5)
    sold, refused = order_created(sku, 2), order_created(sku, 99)
    await deliver(sessions, OUTBOX, handlers.on_order_created, sold)
    await deliver(sessions, OUTBOX, handlers.on_order_created, refused)
    confirmed = order.OrderConfirmed(order_id=sold.order_id)
    await deliver(sessions, OUTBOX, handlers.on_order_confirmed, confirmed)
    # Released with the sold items, then with none: nothing was held for the refused order.
    await deliver(sessions, OUTBOX, handlers.on_order_cancelled, cancelled(sold))
    await deliver(sessions, OUTBOX, handlers.on_order_cancelled, cancelled(refused))


@pytest.fixture(scope="module")
async def published(database_url) -> list[Published]:
    """What the inventory service wrote to its outbox on every path, on a database of its own."""
    return await run_producer(database_url("inventory"), every_path)


async def test_every_consumer_can_read_every_event_the_inventory_service_publishes(published):
    assert verify("inventory", published, load_expectations(SERVICES)) == []


async def test_a_change_that_breaks_a_consumer_is_caught_naming_consumer_and_field(published):
    product = next(p for p in published if p.event == ("ProductUpdated", 1))
    envelope = copy.deepcopy(product.envelope)
    envelope["payload"]["unit_price_cents"] = "2.50"

    found = problems(Published(product.topic, envelope), load_expectations(SERVICES))

    assert found == [
        "order cannot read ProductUpdated v1: payload.unit_price_cents: "
        "'2.50' is not of type 'integer'"
    ]


async def test_an_event_on_another_topic_is_caught(published):
    refused = next(p for p in published if p.event == ("StockReservationFailed", 1))

    found = problems(Published("inventory.products", refused.envelope), load_expectations(SERVICES))

    assert found == [
        "order cannot read StockReservationFailed v1: it reads inventory.events, "
        "not inventory.products"
    ]
