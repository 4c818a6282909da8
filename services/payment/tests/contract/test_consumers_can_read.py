"""Consumer-driven contract: the order service can read what the payment service publishes.

The payment service's real handlers charge, decline, refund and void on a real database;
the events they wrote to the outbox are checked against what each consumer declares it
reads (`services/*/contracts/consumes.yaml`).
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
from payment_service.service_layer import handlers
from shared_contracts.order import v1 as order
from shared_contracts.order import v2 as order_v2

pytestmark = pytest.mark.integration

SERVICES = Path(__file__).parents[3]
OUTBOX = Outbox("payment")


def order_created(customer_id: str, total_cents: int) -> order_v2.OrderCreated:
    price = order_v2.Money(amount_cents=total_cents, currency="EUR")
    line = order_v2.OrderLine(sku="sku-1", quantity=1, unit_price=price)
    return order_v2.OrderCreated(
        order_id=uuid.uuid4(), customer_id=customer_id, lines=[line], total=price
    )


async def every_path(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Charge, decline (no funds, no account), refund the charge, void the declined order."""
    customer = f"cust-{uuid.uuid4().hex[:12]}"
    async with sessions.begin() as session:
        await handlers.set_balance(session, customer, 1000)
    paid, declined = order_created(customer, 600), order_created(customer, 600)
    for created in (paid, declined, order_created("nobody", 10)):
        await deliver(sessions, OUTBOX, handlers.on_order_created, created)
    for cancelled in (paid, declined):
        reason = order.CancellationReason.CUSTOMER_CANCELLED
        event = order.OrderCancelled(order_id=cancelled.order_id, reason=reason)
        await deliver(sessions, OUTBOX, handlers.on_order_cancelled, event)


@pytest.fixture(scope="module")
async def published(database_url) -> list[Published]:
    """What the payment service wrote to its outbox on every path, on a database of its own."""
    return await run_producer(database_url("payment"), every_path)


async def test_every_consumer_can_read_every_event_the_payment_service_publishes(published):
    assert verify("payment", published, load_expectations(SERVICES)) == []


async def test_a_change_that_breaks_a_consumer_is_caught_naming_consumer_and_field(published):
    failed = next(p for p in published if p.event == ("PaymentFailed", 1))
    envelope = copy.deepcopy(failed.envelope)
    del envelope["payload"]["reason"]
    envelope["payload"]["order_id"] = "order-1"

    found = problems(Published(failed.topic, envelope), load_expectations(SERVICES))

    assert found == [
        "order cannot read PaymentFailed v1: payload: 'reason' is a required property",
        "order cannot read PaymentFailed v1: payload.order_id: 'order-1' is not a 'uuid'",
    ]
