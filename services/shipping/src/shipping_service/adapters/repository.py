"""Load and save shipments; every function works in the caller's session."""

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shipping_service.adapters.orm import cancelled_orders, shipments
from shipping_service.domain.model import Shipment, ShipmentStatus


async def get_shipment(
    session: AsyncSession, order_id: uuid.UUID, *, for_update: bool = False
) -> Shipment | None:
    """The order's shipment, or None; `for_update` locks its row until the transaction ends."""
    query = sa.select(shipments).where(shipments.c.order_id == order_id)
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    if row is None:
        return None
    return Shipment(
        order_id=row.order_id,
        status=ShipmentStatus(row.status),
        ship_by=row.ship_by,
        scheduled_at=row.scheduled_at,
        cancelled_at=row.cancelled_at,
        shipment_id=row.shipment_id,
    )


async def add_shipment(session: AsyncSession, shipment: Shipment) -> None:
    """Insert a new shipment; a second one for an order violates the unique key."""
    await session.execute(
        sa.insert(shipments).values(
            shipment_id=shipment.shipment_id,
            order_id=shipment.order_id,
            status=shipment.status.value,
            ship_by=shipment.ship_by,
            scheduled_at=shipment.scheduled_at,
        )
    )


async def save_cancellation(session: AsyncSession, shipment: Shipment) -> None:
    """Write the status and cancellation time of a shipment loaded (and locked) here."""
    await session.execute(
        sa.update(shipments)
        .where(shipments.c.shipment_id == shipment.shipment_id)
        .values(status=shipment.status.value, cancelled_at=shipment.cancelled_at)
    )


async def add_cancelled_order(session: AsyncSession, order_id: uuid.UUID) -> None:
    """Remember that the order was cancelled (again is fine)."""
    await session.execute(
        insert(cancelled_orders).values(order_id=order_id).on_conflict_do_nothing()
    )


async def is_cancelled(session: AsyncSession, order_id: uuid.UUID) -> bool:
    """Whether shipping heard that the order was cancelled."""
    query = sa.select(cancelled_orders.c.order_id).where(cancelled_orders.c.order_id == order_id)
    return (await session.execute(query)).first() is not None
