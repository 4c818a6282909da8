"""Load and save products and reservations: rows <-> domain objects.

Loads that precede a change lock their rows (`FOR UPDATE`); products are always
locked in SKU order, so two transactions never wait on each other in a cycle.
The statements that every saga runs are built once, here, with bound parameters:
building a statement and its cache key on each call cost more than its SQL.
"""

from collections.abc import Iterable
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from inventory_service.adapters.orm import cancelled_orders, products, reservations
from inventory_service.domain import model

# The trailing _ keeps a parameter apart from the column of that name.
_ORDER_ID: sa.BindParameter[UUID] = sa.bindparam("order_id_")
# The SKUs go as one array: an IN list is a statement per length, each prepared anew.
_LOCK_PRODUCTS = (
    sa.select(products)
    .where(products.c.sku == sa.any_(sa.bindparam("skus", type_=postgresql.ARRAY(sa.Text))))
    .order_by(products.c.sku)
    .with_for_update()
)
_SAVE_PRODUCT = (
    sa.update(products)
    .where(products.c.sku == sa.bindparam("sku_"))
    .values(updated_at=sa.func.now())
)
# Both of a reservation's checks in one statement: each statement costs a round trip
# and its share of the service's CPU.
_CANCELLED_AND_RESERVED = sa.select(
    sa.exists().where(cancelled_orders.c.order_id == _ORDER_ID).label("cancelled"),
    sa.exists().where(reservations.c.order_id == _ORDER_ID).label("reserved"),
)
_LOCK_RESERVATIONS = (
    sa.select(reservations)
    .where(reservations.c.order_id == _ORDER_ID)
    .order_by(reservations.c.sku)
    .with_for_update()
)
_ADD_RESERVATIONS = insert(reservations)
_SAVE_RESERVATION = (
    sa.update(reservations)
    .where(reservations.c.order_id == _ORDER_ID, reservations.c.sku == sa.bindparam("sku_"))
    .values(updated_at=sa.func.now())
)


def _product(row: sa.Row[tuple[object, ...]]) -> model.Product:
    return model.Product(
        sku=row.sku,
        name=row.name,
        unit_price_cents=row.unit_price_cents,
        available=row.available,
        reserved=row.reserved,
        sold=row.sold,
        version=row.version,
        received=row.received,
    )


async def get_product(session: AsyncSession, sku: str) -> model.Product | None:
    """The product `sku`, unlocked (for reading), or None."""
    row = (await session.execute(sa.select(products).where(products.c.sku == sku))).one_or_none()
    return None if row is None else _product(row)


async def list_products(
    session: AsyncSession, limit: int, after: str | None = None
) -> list[model.Product]:
    """Up to `limit` products with a SKU after `after`, in SKU byte order (unlocked).

    SKUs compare with the "C" collation, so the order does not depend on the database's
    locale and a client can page through with `after` = the last SKU it saw.
    """
    sku = products.c.sku.collate("C")
    query = sa.select(products).order_by(sku).limit(limit)
    if after is not None:
        query = query.where(sku > after)
    return [_product(row) for row in await session.execute(query)]


async def lock_or_add_product(session: AsyncSession, sku: str) -> model.Product:
    """The product `sku`, locked; a never-stocked one (version 0) is inserted first.

    Inserting before locking makes two concurrent creations of one SKU serialize on
    its row instead of one of them failing on the primary key.
    """
    blank = model.Product(sku)
    await session.execute(insert(products).values(_values(blank)).on_conflict_do_nothing())
    row = (
        await session.execute(sa.select(products).where(products.c.sku == sku).with_for_update())
    ).one()
    return _product(row)


async def lock_products(session: AsyncSession, skus: Iterable[str]) -> dict[str, model.Product]:
    """The known products among `skus`, locked in SKU order, by SKU."""
    rows = await session.execute(_LOCK_PRODUCTS, {"skus": sorted(set(skus))})
    return {row.sku: _product(row) for row in rows}


async def save_products(session: AsyncSession, changed: Iterable[model.Product]) -> None:
    """Write the catalog data and stock buckets of `changed` (rows that already exist)."""
    for product in changed:
        await session.execute(_SAVE_PRODUCT, {"sku_": product.sku, **_values(product)})


def _values(product: model.Product) -> dict[str, object]:
    return {
        "sku": product.sku,
        "name": product.name,
        "unit_price_cents": product.unit_price_cents,
        "available": product.available,
        "reserved": product.reserved,
        "sold": product.sold,
        "version": product.version,
        "received": product.received,
    }


async def add_cancelled_order(session: AsyncSession, order_id: UUID) -> None:
    """Remember that the order was cancelled (again is fine)."""
    await session.execute(
        insert(cancelled_orders).values(order_id=order_id).on_conflict_do_nothing()
    )


async def cancelled_and_reserved(session: AsyncSession, order_id: UUID) -> tuple[bool, bool]:
    """Whether inventory heard that the order was cancelled, and whether it reserved for it."""
    row = (await session.execute(_CANCELLED_AND_RESERVED, {"order_id_": order_id})).one()
    return row.cancelled, row.reserved


async def lock_reservations(session: AsyncSession, order_id: UUID) -> list[model.Reservation]:
    """The reservations of `order_id`, locked, in SKU order."""
    return [
        model.Reservation(row.order_id, row.sku, row.quantity, model.ReservationStatus(row.status))
        for row in await session.execute(_LOCK_RESERVATIONS, {"order_id_": order_id})
    ]


async def add_reservations(session: AsyncSession, new: Iterable[model.Reservation]) -> None:
    """Insert `new` reservations."""
    rows = [
        {"order_id": r.order_id, "sku": r.sku, "quantity": r.quantity, "status": r.status.value}
        for r in new
    ]
    if rows:
        await session.execute(_ADD_RESERVATIONS, rows)


async def save_reservations(session: AsyncSession, changed: Iterable[model.Reservation]) -> None:
    """Write the status of `changed` reservations."""
    for r in changed:
        await session.execute(
            _SAVE_RESERVATION,
            {"order_id_": r.order_id, "sku_": r.sku, "status": r.status.value},
        )
