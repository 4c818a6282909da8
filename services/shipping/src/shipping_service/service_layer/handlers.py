"""Use cases: schedule a shipment on OrderConfirmed, cancel it on OrderCancelled.

Each handler runs inside the consumer's transaction (`delivery.session`), the one that
also records the event in the inbox, so its effects happen once however often the
event is delivered. Each reads top-down: load (locking what the rule needs) -> the
domain decides -> save -> write the resulting event to the outbox.
"""

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import Delivery
from shared_contracts import Topic
from shared_contracts.order.v1 import OrderCancelled, OrderConfirmed
from shared_contracts.shipment.v1 import ShipmentCancelled, ShipmentScheduled
from shipping_service.adapters import repository
from shipping_service.domain import model


async def on_order_confirmed(delivery: Delivery, event: OrderConfirmed) -> None:
    """Schedule the order's shipment, once, and announce it with ShipmentScheduled."""
    session = delivery.session
    existing = await repository.get_shipment(session, event.order_id, for_update=True)
    cancelled = await repository.is_cancelled(session, event.order_id)
    shipment = model.schedule(event.order_id, existing, cancelled, now=datetime.now(UTC))
    if shipment is None:
        return  # scheduled before (a decision sent again), or cancelled first (a replay)
    await repository.add_shipment(session, shipment)
    scheduled = ShipmentScheduled(
        order_id=shipment.order_id,
        shipment_id=shipment.shipment_id,
        ship_by=shipment.ship_by,
        scheduled_at=shipment.scheduled_at,
    )
    await delivery.publish(Topic.SHIPMENT_EVENTS, str(shipment.order_id), scheduled)


async def on_order_cancelled(delivery: Delivery, event: OrderCancelled) -> None:
    """Cancel the order's shipment if one is scheduled, and announce it with ShipmentCancelled.

    An order cancelled before its confirmation had no shipment: it is remembered, so
    that a confirmation arriving after all (a replay) ships nothing.
    """
    session = delivery.session
    await repository.add_cancelled_order(session, event.order_id)
    existing = await repository.get_shipment(session, event.order_id, for_update=True)
    shipment = model.cancel(existing, now=datetime.now(UTC))
    if shipment is None:
        return
    await repository.save_cancellation(session, shipment)
    assert shipment.cancelled_at is not None, "model.cancel sets it"
    cancelled = ShipmentCancelled(
        order_id=shipment.order_id,
        shipment_id=shipment.shipment_id,
        cancelled_at=shipment.cancelled_at,
    )
    await delivery.publish(Topic.SHIPMENT_EVENTS, str(shipment.order_id), cancelled)


async def get_shipment(session: AsyncSession, order_id: uuid.UUID) -> model.Shipment | None:
    """The order's shipment, or None when it has none (not confirmed, or not yet heard of)."""
    return await repository.get_shipment(session, order_id)
