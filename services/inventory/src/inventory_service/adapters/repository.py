"""Load and save products and reservations: rows <-> domain objects.

Loads that precede a change lock their rows (`FOR UPDATE`); products are always
locked in SKU order, so two transactions never wait on each other in a cycle.
The statements that every saga runs are built once, here, with bound parameters:
building a statement and its cache key on each call cost more than its SQL.
"""

from collections.abc import Iterable, Mapping
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


def _rows(table: sa.Table, name: str, *columns: str) -> sa.TableValuedAlias:
    """Rows of `table`'s `columns` passed as one array per column and `unnest`ed.

    One statement writes any number of rows, and every count shares its prepared plan.
    """
    arrays = (
        sa.bindparam(f"{name}_{column}", type_=postgresql.ARRAY(table.c[column].type))
        for column in columns
    )
    return sa.func.unnest(*arrays).table_valued(*columns).render_derived(name=name)


_STOCK = ("name", "unit_price_cents", "available", "reserved", "sold", "version", "received")
_SAVED_PRODUCTS = _rows(products, "saved_products", "sku", *_STOCK)
_SAVE_PRODUCTS = (
    sa.update(products)
    .where(products.c.sku == _SAVED_PRODUCTS.c.sku)
    .values({**{name: _SAVED_PRODUCTS.c[name] for name in _STOCK}, "updated_at": sa.func.now()})
)
# Both of a reservation's checks in one statement: each statement costs a round trip
# and its share of the service's CPU.
_CANCELLED_AND_RESERVED = sa.select(
    sa.exists().where(cancelled_orders.c.order_id == _ORDER_ID).label("cancelled"),
    sa.exists().where(reservations.c.order_id == _ORDER_ID).label("reserved"),
)
# An order's reservations and their products, locked together in SKU order: every
# other statement locks products in SKU order too, so no two transactions wait on each
# other in a cycle.
_LOCK_RESERVATIONS = (
    sa.select(
        reservations.c.order_id,
        reservations.c.quantity,
        reservations.c.status,
        products.c.sku,
        *(products.c[name] for name in _STOCK),
    )
    .join_from(reservations, products, reservations.c.sku == products.c.sku)
    .where(reservations.c.order_id == _ORDER_ID)
    .order_by(reservations.c.sku)
    .with_for_update()
)
# A saga step writes its products and its reservations in one statement: the products'
# update runs as a data-modifying WITH ahead of the reservations' insert or update.
_NEW_RESERVATIONS = _rows(reservations, "new_reservations", "order_id", "sku", "quantity", "status")
_RESERVE = (
    sa.insert(reservations)
    .from_select([column.name for column in _NEW_RESERVATIONS.c], sa.select(*_NEW_RESERVATIONS.c))
    .add_cte(_SAVE_PRODUCTS.cte("saved"))
)
_SETTLED = _rows(reservations, "settled", "order_id", "sku", "status")
_SETTLE = (
    sa.update(reservations)
    .where(reservations.c.order_id == _SETTLED.c.order_id, reservations.c.sku == _SETTLED.c.sku)
    .values(status=_SETTLED.c.status, updated_at=sa.func.now())
    .add_cte(_SAVE_PRODUCTS.cte("saved"))
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
    await session.execute(_SAVE_PRODUCTS, _stock(changed))


def _stock(changed: Iterable[model.Product]) -> dict[str, list[object]]:
    """The parameters of `_SAVE_PRODUCTS`, alone or as the WITH of a saga step."""
    return _arrays(_SAVED_PRODUCTS, [_values(product) for product in changed])


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


async def lock_reservations(
    session: AsyncSession, order_id: UUID
) -> tuple[list[model.Reservation], dict[str, model.Product]]:
    """The reservations of `order_id` in SKU order, and their products by SKU, all locked."""
    rows = (await session.execute(_LOCK_RESERVATIONS, {"order_id_": order_id})).all()
    held = [
        model.Reservation(row.order_id, row.sku, row.quantity, model.ReservationStatus(row.status))
        for row in rows
    ]
    return held, {row.sku: _product(row) for row in rows}


async def reserve(
    session: AsyncSession, changed: Iterable[model.Product], new: Iterable[model.Reservation]
) -> None:
    """Write the stock of `changed` products and insert the `new` reservations: one statement."""
    new_rows = _arrays(_NEW_RESERVATIONS, [_reservation(r) for r in new])
    await session.execute(_RESERVE, {**_stock(changed), **new_rows})


async def settle(
    session: AsyncSession,
    settled: list[model.Reservation],
    products: Mapping[str, model.Product],
) -> None:
    """Write the status of `settled` reservations and the stock of their `products`.

    One statement, or none when nothing changed (a repeat).
    """
    if settled:
        changed = _stock(products[r.sku] for r in settled)
        rows = _arrays(_SETTLED, [_reservation(r) for r in settled])
        await session.execute(_SETTLE, {**changed, **rows})


def _reservation(reservation: model.Reservation) -> dict[str, object]:
    return {
        "order_id": reservation.order_id,
        "sku": reservation.sku,
        "quantity": reservation.quantity,
        "status": reservation.status.value,
    }


def _arrays(rows_of: sa.TableValuedAlias, rows: list[dict[str, object]]) -> dict[str, list[object]]:
    """The parameters of a `_rows` alias for `rows`: one list per column."""
    names = [column.name for column in rows_of.c]
    return {f"{rows_of.name}_{name}": [row[name] for row in rows] for name in names}
