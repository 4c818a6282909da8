"""Load and save products and reservations: rows <-> domain objects.

Loads that precede a change lock their rows (`FOR UPDATE`), products in SKU order; a
consumer's transaction locks everything its events change first, with `hold`, so that
two transactions wait on each other in one order, not in a cycle. The statements that
every saga runs are built once, here, with bound parameters: building a statement and
its cache key on each call cost more than its SQL.

A transaction holds what it loaded: a product, or an order's reservations, is read
once, and every handler that asks for it again gets the same object, changed by the
handlers before it. What they change is written when the transaction commits (or
before a statement that reads reservations), by one statement for all (`_WRITE`): a
consumer's transaction applies a fetch's events, and a statement each was a round trip
each, most of what a statement costs here.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import LateralFromClause

from chassis.db import TransactionLocal
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


def _array(table: sa.Table, name: str, column: str) -> sa.BindParameter[object]:
    """The array of `column` values passed for the rows `name`."""
    return sa.bindparam(f"{name}_{column}", type_=postgresql.ARRAY(table.c[column].type))


def _rows(table: sa.Table, name: str, *columns: str) -> sa.TableValuedAlias:
    """Rows of `table`'s `columns` passed as one array per column and `unnest`ed.

    One statement writes any number of rows, and every count shares its prepared plan.
    """
    arrays = (_array(table, name, column) for column in columns)
    return sa.func.unnest(*arrays).table_valued(*columns).render_derived(name=name)


def _among(table: sa.Table, name: str, column: str) -> sa.ColumnElement[bool]:
    """`table`'s rows whose `column` is among the values passed for the rows `name`.

    An UPDATE that joins its table with those rows needs this condition on the table
    itself to find them by its index, whatever the table held when PostgreSQL made the
    plan it keeps for the prepared statement: without it, that plan was made on a
    nearly empty table and hashed the passed rows against a scan of the whole table.
    """
    return table.c[column] == sa.any_(_array(table, name, column))


_STOCK = ("name", "unit_price_cents", "available", "reserved", "sold", "version", "received")
_SAVED_PRODUCTS = _rows(products, "saved_products", "sku", *_STOCK)
_SAVE_PRODUCTS = (
    sa.update(products)
    .where(products.c.sku == _SAVED_PRODUCTS.c.sku, _among(products, "saved_products", "sku"))
    .values({**{name: _SAVED_PRODUCTS.c[name] for name in _STOCK}, "updated_at": sa.func.now()})
)
# The orders go as one array, so that one prepared statement serves any number.
_ORDER_IDS = sa.bindparam("order_ids", type_=postgresql.ARRAY(postgresql.UUID))
_CHECKED = (
    sa.func.unnest(_ORDER_IDS)
    .table_valued(sa.column("order_id", postgresql.UUID(as_uuid=True)))
    .render_derived(name="checked")
)


def _found(name: str, *where: sa.ColumnElement[bool]) -> LateralFromClause:
    """Whether a row matches `where` for each checked order, looked up in its index.

    As a LATERAL with LIMIT 1, not an EXISTS: PostgreSQL may run an EXISTS for many
    orders as one hash of the whole table, and a prepared statement keeps the plan it
    chose while the table was small, so every check scanned every reservation.
    """
    found = sa.select(sa.true().label("found")).where(*where)
    return found.limit(sa.literal_column("1")).lateral(name)


_CANCELLED = _found("cancelled", cancelled_orders.c.order_id == _CHECKED.c.order_id)
# An order has a reservation per line, so a plan made on a nearly empty table expects
# LIMIT 1 to stop a scan early; the order being among those checked makes a match rare
# enough that only the index is worth it.
_RESERVED = _found(
    "reserved",
    reservations.c.order_id == _CHECKED.c.order_id,
    reservations.c.order_id == sa.any_(_ORDER_IDS),
)
_CHECKS = sa.select(
    _CHECKED.c.order_id,
    _CANCELLED.c.found.is_not(None).label("cancelled"),
    _RESERVED.c.found.is_not(None).label("reserved"),
).select_from(_CHECKED.outerjoin(_CANCELLED, sa.true()).outerjoin(_RESERVED, sa.true()))
"""Both of a reservation's checks, for every new order of a transaction, in one statement."""
# Only the reservations are locked: an order's reservations are written by the
# transactions that apply its events, which its partition runs one after another,
# and their products are locked next, in SKU order with every other product.
_LOCK_RESERVATIONS = (
    sa.select(
        reservations.c.order_id, reservations.c.sku, reservations.c.quantity, reservations.c.status
    )
    .where(reservations.c.order_id == sa.any_(_ORDER_IDS))
    .order_by(reservations.c.order_id, reservations.c.sku)
    .with_for_update()
)
_NEW_RESERVATIONS = _rows(reservations, "new_reservations", "order_id", "sku", "quantity", "status")
_SETTLED = _rows(reservations, "settled", "order_id", "sku", "status")
_WRITE = (
    sa.insert(reservations)
    .from_select([column.name for column in _NEW_RESERVATIONS.c], sa.select(*_NEW_RESERVATIONS.c))
    .add_cte(_SAVE_PRODUCTS.cte("stock_saved"))
    .add_cte(
        sa.update(reservations)
        .where(
            _among(reservations, "settled", "order_id"),
            reservations.c.order_id == _SETTLED.c.order_id,
            reservations.c.sku == _SETTLED.c.sku,
        )
        .values(status=_SETTLED.c.status, updated_at=sa.func.now())
        .cte("status_saved")
    )
)
"""What a transaction's saga steps changed, in one statement: the products' stock, the
reservations' new statuses (data-modifying WITHs) and the new reservations, each table's
rows as arrays. The WITHs and the insert see one snapshot, so a reservation made and
settled before one write is inserted with its last status and left alone by the update."""


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


async def hold(
    session: AsyncSession, skus: Iterable[str], created: Sequence[UUID], decided: Sequence[UUID]
) -> None:
    """Load and lock what a transaction's events change, in three statements for all.

    The reservations of the `decided` orders (confirmed or cancelled), then their
    products and those of `skus` (the new orders' lines), in SKU order, then the checks
    of the `created` orders, which run after the locks so that they see what a
    transaction that held them committed. The handlers then find all of it held: a
    consumer's transaction applies a fetch's events, a dozen orders or more flat out,
    and each ran two or three statements of its own.
    """
    held = _HELD.get(session)
    await _lock_reservations(session, decided)
    await lock_products(
        session, [*skus, *(r.sku for order_id in decided for r in held.reservations[order_id])]
    )
    await _check(session, created)


async def lock_products(session: AsyncSession, skus: Iterable[str]) -> dict[str, model.Product]:
    """The known products among `skus`, by SKU, locked (in SKU order) and held.

    Those the transaction holds already are not read again: it has changed them, and
    writes them only at its commit.
    """
    wanted, held = set(skus), _HELD.get(session).products
    missing = sorted(wanted - held.keys())
    if missing:
        for row in await session.execute(_LOCK_PRODUCTS, {"skus": missing}):
            held[row.sku] = _product(row)
    return {sku: held[sku] for sku in wanted if sku in held}


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
    _HELD.get(session).checks.pop(order_id, None)  # a check read before this is out of date
    await session.execute(
        insert(cancelled_orders).values(order_id=order_id).on_conflict_do_nothing()
    )


async def cancelled_and_reserved(session: AsyncSession, order_id: UUID) -> tuple[bool, bool]:
    """Whether inventory heard that the order was cancelled, and whether it reserved for it.

    A check that `hold` read answers once: what the transaction does after it is its own.
    """
    checks = _HELD.get(session).checks
    if order_id not in checks:
        await _check(session, [order_id])
    return checks.pop(order_id)


async def _check(session: AsyncSession, order_ids: Sequence[UUID]) -> None:
    if order_ids:
        await _write(session)  # the checks read reservations: those not written yet too
        checks = _HELD.get(session).checks
        for row in await session.execute(_CHECKS, {"order_ids": list(order_ids)}):
            checks[row.order_id] = (row.cancelled, row.reserved)


async def lock_reservations(
    session: AsyncSession, order_id: UUID
) -> tuple[list[model.Reservation], dict[str, model.Product]]:
    """The reservations of `order_id` in SKU order, and their products by SKU, all locked
    and held."""
    await _lock_reservations(session, [order_id])
    found = _HELD.get(session).reservations[order_id]
    return found, await lock_products(session, [r.sku for r in found])


async def _lock_reservations(session: AsyncSession, order_ids: Sequence[UUID]) -> None:
    held = _HELD.get(session).reservations
    missing = list(dict.fromkeys(o for o in order_ids if o not in held))
    if missing:
        await _write(session)
        for order_id in missing:
            held[order_id] = []
        for row in await session.execute(_LOCK_RESERVATIONS, {"order_ids": missing}):
            status = model.ReservationStatus(row.status)
            held[row.order_id].append(
                model.Reservation(row.order_id, row.sku, row.quantity, status)
            )


def reserve(
    session: AsyncSession, changed: Iterable[model.Product], new: Sequence[model.Reservation]
) -> None:
    """Save the stock of `changed` products (held) and the `new` reservations.

    They are written when the transaction commits, with every other change it made (or
    before a statement that reads reservations), by one statement: see `_WRITE`.
    """
    held = _HELD.get(session)
    held.changed.update((product.sku, product) for product in changed)
    held.new.extend(new)
    for reservation in new:
        held.reservations.setdefault(reservation.order_id, []).append(reservation)


def settle(
    session: AsyncSession,
    settled: Sequence[model.Reservation],
    products: Mapping[str, model.Product],
) -> None:
    """Save the status of `settled` reservations and the stock of their `products` (held),
    written as `reserve` says; nothing when nothing changed (a repeat)."""
    held = _HELD.get(session)
    held.changed.update((r.sku, products[r.sku]) for r in settled)
    held.settled.extend(settled)


@dataclass
class _Held:
    """What a transaction holds locked, and what it has changed but not written yet."""

    products: dict[str, model.Product] = field(default_factory=dict)
    reservations: dict[UUID, list[model.Reservation]] = field(default_factory=dict)
    """Every reservation of each order, as the transaction has left them."""
    checks: dict[UUID, tuple[bool, bool]] = field(default_factory=dict)
    changed: dict[str, model.Product] = field(default_factory=dict)
    new: list[model.Reservation] = field(default_factory=list)
    settled: list[model.Reservation] = field(default_factory=list)

    def take_writes(self) -> dict[str, list[object]] | None:
        """The parameters of `_WRITE` for the changes not written yet (None if none),
        which count as written from now on."""
        if not (self.changed or self.new or self.settled):
            return None
        parameters = {
            **_stock(self.changed.values()),
            **_arrays(_NEW_RESERVATIONS, [_reservation(r) for r in self.new]),
            **_arrays(_SETTLED, [_reservation(r) for r in self.settled]),
        }
        self.changed, self.new, self.settled = {}, [], []
        return parameters


async def _write(session: AsyncSession) -> None:
    """Write the changes not written yet, before a statement that must see them."""
    held = _HELD.find(session)
    parameters = held.take_writes() if held is not None else None
    if parameters is not None:
        await session.execute(_WRITE, parameters)


def _write_at_commit(session: Session, held: _Held) -> None:
    parameters = held.take_writes()
    if parameters is not None:
        session.execute(_WRITE, parameters)


_HELD = TransactionLocal("inventory_service.held", _Held, _write_at_commit)


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
