"""Use cases: the product command and queries the API calls, and the consumers of order events.

Each reads top-down: load (locking what it changes) -> the domain decides -> save ->
write the resulting events to the outbox, all in the caller's transaction.
"""

from collections.abc import Sequence

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import Delivery
from chassis.outbox import Outbox
from inventory_service.adapters import repository
from inventory_service.domain import model
from shared_contracts import Topic
from shared_contracts.inventory import v1 as inventory_v1
from shared_contracts.order import v1 as order_v1

OUT_OF_STOCK = "OUT_OF_STOCK"


async def put_product(
    session: AsyncSession, outbox: Outbox, sku: str, name: str, unit_price_cents: int, stock: int
) -> model.Product:
    """Create or replace a product's catalog data and units on hand; publish ProductUpdated."""
    product = await repository.lock_or_add_product(session, sku)
    product.replace_catalog(name, unit_price_cents, stock)
    await repository.save_products(session, [product])
    event = inventory_v1.ProductUpdated(
        sku=sku, name=name, unit_price_cents=unit_price_cents, version=product.version
    )
    await outbox.add(session, Topic.PRODUCT_EVENTS, sku, event)
    return product


async def get_product(session: AsyncSession, sku: str) -> model.Product | None:
    """The product `sku` with its stock buckets and units received, or None."""
    return await repository.get_product(session, sku)


async def list_products(
    session: AsyncSession, limit: int, after: str | None = None
) -> tuple[list[model.Product], str | None]:
    """A page of up to `limit` products after SKU `after`, in SKU order, and the next cursor.

    The cursor is the page's last SKU when more products follow it, else None.
    """
    found = await repository.list_products(session, limit + 1, after)
    page = found[:limit]
    return page, (page[-1].sku if len(found) > limit else None)


async def on_order_created(delivery: Delivery, event: order_v1.OrderCreated) -> None:
    """Reserve every line of a new order, or nothing; publish the outcome."""
    session, key = delivery.session, str(event.order_id)
    wanted = model.total_quantities((line.sku, line.quantity) for line in event.items)
    products = await repository.lock_products(session, wanted)
    cancelled, reserved_before = await repository.cancelled_and_reserved(session, event.order_id)
    if cancelled:
        return  # cancelled before it got here (a replay, a lost event): never hold stock for it
    if reserved_before:
        return  # a repeat of an OrderCreated it applied
    decision = model.reserve_order(event.order_id, wanted, products)
    if isinstance(decision, model.Rejected):
        failed = inventory_v1.StockReservationFailed(
            order_id=event.order_id, reason=OUT_OF_STOCK, skus=decision.short_skus
        )
        await delivery.publish(Topic.INVENTORY_EVENTS, key, failed)
        return
    repository.reserve(session, products.values(), decision.reservations)
    reserved = inventory_v1.StockReserved(
        order_id=event.order_id, items=_lines(decision.reservations)
    )
    await delivery.publish(Topic.INVENTORY_EVENTS, key, reserved)


async def on_order_confirmed(delivery: Delivery, event: order_v1.OrderConfirmed) -> None:
    """Turn a confirmed order's held units into sold ones; answer StockSold.

    A repeat is answered too: the order service sends its decision again until it hears back.
    """
    reservations, products = await repository.lock_reservations(delivery.session, event.order_id)
    sold = model.sell_order(reservations, products)
    repository.settle(delivery.session, sold, products)
    out = inventory_v1.StockSold(
        order_id=event.order_id,
        items=_lines([r for r in reservations if r.status is model.ReservationStatus.SOLD]),
    )
    await delivery.publish(Topic.INVENTORY_EVENTS, str(event.order_id), out)


async def on_order_cancelled(delivery: Delivery, event: order_v1.OrderCancelled) -> None:
    """Put a cancelled order's held or sold units back on hand; answer StockReleased.

    Every OrderCancelled is answered, with no items when nothing was held, and a repeat
    too: the order service sends its decision again until it hears back.
    """
    await repository.add_cancelled_order(delivery.session, event.order_id)
    reservations, products = await repository.lock_reservations(delivery.session, event.order_id)
    released = model.release_order(reservations, products)
    repository.settle(delivery.session, released, products)
    out = inventory_v1.StockReleased(order_id=event.order_id, items=_lines(reservations))
    await delivery.publish(Topic.INVENTORY_EVENTS, str(event.order_id), out)


async def lock_ordered_stock(session: AsyncSession, events: Sequence[BaseModel]) -> None:
    """The consumer's prefetch: load and lock what a transaction's events change.

    The products of the new orders and the reservations (with their products) of the
    confirmed and cancelled ones, and the new orders' checks: three statements for all,
    where each event ran two or three of its own.
    """
    created = [e for e in events if isinstance(e, order_v1.OrderCreated)]
    decided = [
        e.order_id
        for e in events
        if isinstance(e, order_v1.OrderConfirmed | order_v1.OrderCancelled)
    ]
    skus = (line.sku for e in created for line in e.items)
    await repository.hold(session, skus, [e.order_id for e in created], decided)


def _lines(reservations: list[model.Reservation]) -> list[inventory_v1.ReservedLine]:
    return [inventory_v1.ReservedLine(sku=r.sku, quantity=r.quantity) for r in reservations]
