"""The shipping use cases on a real database, applied as the consumer applies them."""

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.contract_testing import Published, deliver, read_outbox
from chassis.outbox import Outbox
from shared_contracts import Topic
from shared_contracts.order.v1 import CancellationReason, OrderCancelled, OrderConfirmed
from shipping_service.adapters import repository
from shipping_service.domain.model import Shipment, ShipmentStatus
from shipping_service.service_layer import handlers

pytestmark = pytest.mark.integration

OUTBOX = Outbox("shipping")


def cancelled(order_id: uuid.UUID) -> OrderCancelled:
    return OrderCancelled(order_id=order_id, reason=CancellationReason.CUSTOMER_CANCELLED)


async def shipment(
    sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID
) -> Shipment | None:
    async with sessions.begin() as session:
        return await repository.get_shipment(session, order_id)


async def events_for(
    sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID
) -> list[Published]:
    return [p for p in await read_outbox(sessions) if p.envelope["aggregate_id"] == str(order_id)]


async def test_a_confirmed_order_is_scheduled_and_announced(sessions):
    order_id = uuid.uuid4()

    await deliver(sessions, OUTBOX, handlers.on_order_confirmed, OrderConfirmed(order_id=order_id))

    scheduled = await shipment(sessions, order_id)
    assert scheduled is not None and scheduled.status is ShipmentStatus.SCHEDULED
    [event] = await events_for(sessions, order_id)
    assert (event.topic, event.event) == (Topic.SHIPMENT_EVENTS, ("ShipmentScheduled", 1))
    assert event.envelope["producer"] == "shipping"
    assert event.envelope["payload"]["shipment_id"] == str(scheduled.shipment_id)
    assert event.envelope["payload"]["ship_by"] == scheduled.ship_by.isoformat()


async def test_a_confirmation_sent_again_schedules_one_shipment(sessions):
    order_id = uuid.uuid4()
    for _ in range(2):
        await deliver(
            sessions, OUTBOX, handlers.on_order_confirmed, OrderConfirmed(order_id=order_id)
        )

    assert [p.event for p in await events_for(sessions, order_id)] == [("ShipmentScheduled", 1)]


async def test_cancelling_after_confirmation_cancels_the_shipment_once(sessions):
    order_id = uuid.uuid4()
    await deliver(sessions, OUTBOX, handlers.on_order_confirmed, OrderConfirmed(order_id=order_id))
    scheduled = await shipment(sessions, order_id)

    for _ in range(2):  # the order service sends its decision again until answered
        await deliver(sessions, OUTBOX, handlers.on_order_cancelled, cancelled(order_id))

    now = await shipment(sessions, order_id)
    assert now is not None and scheduled is not None
    assert (now.shipment_id, now.status) == (scheduled.shipment_id, ShipmentStatus.CANCELLED)
    assert now.cancelled_at is not None
    events = await events_for(sessions, order_id)
    assert [p.event for p in events] == [("ShipmentScheduled", 1), ("ShipmentCancelled", 1)]
    assert events[1].envelope["payload"]["shipment_id"] == str(scheduled.shipment_id)


async def test_an_order_cancelled_before_confirmation_is_never_shipped(sessions):
    order_id = uuid.uuid4()

    await deliver(sessions, OUTBOX, handlers.on_order_cancelled, cancelled(order_id))
    # A confirmation replayed from a dead-letter topic, after the cancellation.
    await deliver(sessions, OUTBOX, handlers.on_order_confirmed, OrderConfirmed(order_id=order_id))

    assert await shipment(sessions, order_id) is None
    assert await events_for(sessions, order_id) == []
