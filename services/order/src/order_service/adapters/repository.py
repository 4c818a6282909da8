"""Load and save orders and the catalog replica within the caller's transaction.

The statements that every saga runs are built once, here, with bound parameters:
building a statement and its cache key on each call cost more than its SQL.

An order saved is written when its transaction commits, with every other order the
transaction saved, by one statement sent once for all (see `update`).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from chassis.db import TransactionLocal
from order_service.adapters.orm import catalog, order_history, order_lines, orders
from order_service.domain.model import Line, Order, Outcome, Product, Reason, Status, Step

# The trailing _ keeps a parameter apart from the column of that name.
_ORDER_ID: sa.BindParameter[UUID] = sa.bindparam("order_id_")


def _as_json(table: sa.Table, order_by: sa.Column[Any], *columns: str) -> sa.ScalarSelect[Any]:
    """Each order's rows of `table` as a JSON array of `[column, ...]` arrays (NULL if none)."""
    row = sa.func.json_build_array(*(table.c[name] for name in columns))
    rows = sa.func.json_agg(aggregate_order_by(row, order_by), type_=postgresql.JSON)
    return sa.select(rows).where(table.c.order_id == orders.c.order_id).scalar_subquery()


# The ids go as one array, so that one prepared statement loads any number of orders.
_LOAD = sa.select(
    orders,
    _as_json(order_lines, order_lines.c.line_no, "sku", "quantity", "unit_price_cents").label(
        "lines"
    ),
    _as_json(order_history, order_history.c.id, "step", "at", "detail").label("steps"),
).where(orders.c.order_id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(postgresql.UUID))))
# Locked in id order: two transactions that lock orders in common then wait for each
# other in the same order, rather than deadlock.
_LOCK = _LOAD.order_by(orders.c.order_id).with_for_update(of=orders)
_ADD = sa.insert(orders)
_ADD_LINES = sa.insert(order_lines)
_NEW_STEPS = (
    sa.func.unnest(
        sa.bindparam("steps", type_=postgresql.ARRAY(sa.Text)),
        sa.bindparam("ats", type_=postgresql.ARRAY(sa.DateTime(timezone=True))),
        sa.bindparam("details", type_=postgresql.ARRAY(postgresql.JSONB)),
    )
    .table_valued("step", "at", "detail")
    .render_derived(name="new_steps")
)
_ADD_STEPS = sa.insert(order_history).from_select(
    ["order_id", "step", "at", "detail"], sa.select(_ORDER_ID, *_NEW_STEPS.c)
)
"""An order's new history rows, passed as three arrays: one statement however many."""
_STATE = ("status", "reason", "payment", "stock", "awaiting_since", "resends", "updated_at")
_UPDATE = _ADD_STEPS.add_cte(
    sa.update(orders)
    .where(orders.c.order_id == _ORDER_ID)
    .values({name: sa.bindparam(name, type_=orders.c[name].type) for name in _STATE})
    .cte("saved")
)
"""An order's saga state and its new history rows in one statement: the update runs as
a data-modifying WITH ahead of the history insert."""
# The SKUs go as one array: an IN list is a statement per length, each prepared anew.
_PRODUCTS = sa.select(catalog).where(
    catalog.c.sku == sa.any_(sa.bindparam("skus", type_=postgresql.ARRAY(sa.Text)))
)


async def get(session: AsyncSession, order_id: UUID, *, lock: bool = False) -> Order | None:
    """The order, or None; `lock` holds it (FOR UPDATE) until the transaction ends.

    One statement: its lines and history come along as JSON arrays, which saves an
    event applied to an order two round trips of the three. An order the transaction
    holds already (`lock_all`, a locked `get`, `update`) is returned as held, not read
    again: its row is written only at the commit, so a second read could be stale.
    """
    held = _HELD.find(session)
    if held is not None and order_id in held.orders:
        return held.orders[order_id]
    if lock:
        return (await lock_all(session, [order_id])).get(order_id)
    row = (await session.execute(_LOAD, {"ids": [order_id]})).first()
    return _order(row) if row is not None else None


async def lock_all(session: AsyncSession, order_ids: Iterable[UUID]) -> dict[UUID, Order]:
    """Load and lock, in one statement, the orders among `order_ids` not held yet; return
    every order the transaction holds, by id.

    The transaction holds them until it ends, and `get` returns them without a
    statement: a consumer's transaction applies a fetch's answers, a dozen flat out,
    and loading each order by itself cost a round trip per answer. Unknown ids are
    left out.
    """
    held = _HELD.get(session).orders
    missing = set(order_ids) - held.keys()
    if missing:
        for row in await session.execute(_LOCK, {"ids": list(missing)}):
            held[row.order_id] = _order(row)
    return held


def _order(row: sa.Row[Any]) -> Order:
    """The order a `_LOAD` row holds, with its lines and history."""
    return Order(
        order_id=row.order_id,
        customer_id=row.customer_id,
        lines=[Line(sku, quantity, price) for sku, quantity, price in row.lines or []],
        created_at=row.created_at,
        status=Status(row.status),
        reason=Reason(row.reason) if row.reason else None,
        payment=Outcome(row.payment) if row.payment else None,
        stock=Outcome(row.stock) if row.stock else None,
        awaiting_since=row.awaiting_since,
        resends=row.resends,
        history=[
            Step(step, datetime.fromisoformat(at).astimezone(UTC), detail)
            for step, at, detail in row.steps or []
        ],
    )


async def position(session: AsyncSession, order_id: UUID) -> tuple[datetime, UUID] | None:
    """The order's place in creation order, `(created_at, order_id)`, or None if unknown."""
    row = (
        await session.execute(
            sa.select(orders.c.created_at, orders.c.order_id).where(orders.c.order_id == order_id)
        )
    ).first()
    return (row.created_at, row.order_id) if row else None


async def page(
    session: AsyncSession,
    *,
    limit: int,
    after: tuple[datetime, UUID] | None = None,
    status: Status | None = None,
    customer_id: str | None = None,
) -> list[Order]:
    """Up to `limit` orders in creation order, strictly after the position `after`.

    Keyset pagination on `(created_at, order_id)` (indexed): one query for the orders,
    one for all their lines. The orders come without their history.
    """
    query = sa.select(orders).order_by(orders.c.created_at, orders.c.order_id).limit(limit)
    if after is not None:
        created_at, order_id = after
        cursor = sa.tuple_(
            sa.literal(created_at, orders.c.created_at.type),
            sa.literal(order_id, orders.c.order_id.type),
        )
        query = query.where(sa.tuple_(orders.c.created_at, orders.c.order_id) > cursor)
    if status is not None:
        query = query.where(orders.c.status == status.value)
    if customer_id is not None:
        query = query.where(orders.c.customer_id == customer_id)
    rows = (await session.execute(query)).all()
    if not rows:
        return []
    lines: dict[UUID, list[Line]] = {row.order_id: [] for row in rows}
    for r in await session.execute(
        sa.select(order_lines)
        .where(order_lines.c.order_id.in_(list(lines)))
        .order_by(order_lines.c.order_id, order_lines.c.line_no)
    ):
        lines[r.order_id].append(Line(r.sku, r.quantity, r.unit_price_cents))
    return [
        Order(
            order_id=row.order_id,
            customer_id=row.customer_id,
            lines=lines[row.order_id],
            created_at=row.created_at,
            status=Status(row.status),
            reason=Reason(row.reason) if row.reason else None,
            payment=Outcome(row.payment) if row.payment else None,
            stock=Outcome(row.stock) if row.stock else None,
        )
        for row in rows
    ]


NewOrder = tuple[Order, str | None, str | None]
"""An order just placed, with the idempotency key and request fingerprint it came with."""


async def add(session: AsyncSession, new: Sequence[NewOrder]) -> None:
    """Insert new orders with their lines and first steps: three statements for all of them."""
    if not new:
        return
    await session.execute(
        _ADD,
        [
            {
                "order_id": order.order_id,
                "customer_id": order.customer_id,
                "status": order.status.value,
                "total_cents": order.total_cents,
                "idempotency_key": idempotency_key,
                "request_fingerprint": request_fingerprint,
                "created_at": order.created_at,
                "updated_at": order.created_at,
            }
            for order, idempotency_key, request_fingerprint in new
        ],
    )
    await session.execute(
        _ADD_LINES,
        [
            {"order_id": order.order_id, "line_no": n, **vars(line)}
            for order, _, _ in new
            for n, line in enumerate(order.lines, start=1)
        ],
    )
    await session.execute(_ADD_STEPS, [_new_steps(order) for order, _, _ in new])
    for order, _, _ in new:
        order.history, order.new_steps = order.timeline, []


def update(session: AsyncSession, order: Order, now: datetime) -> None:
    """Save the saga state of a loaded, locked order and its new steps.

    The row is written as the transaction commits, together with every other order it
    saved: one statement whose parameter sets asyncpg sends in one round trip. A
    consumer's transaction applies a fetch's events, a dozen answers flat out, and a
    statement each was a round trip each, most of what a statement costs here. An order
    saved twice is written twice, in order, so both saves' steps are kept.
    """
    held = _HELD.get(session)
    held.orders[order.order_id] = order
    held.updates.append(
        {
            "status": order.status.value,
            "reason": order.reason.value if order.reason else None,
            "payment": order.payment.value if order.payment else None,
            "stock": order.stock.value if order.stock else None,
            "awaiting_since": order.awaiting_since,
            "resends": order.resends,
            "updated_at": now,
            **_new_steps(order),
        }
    )
    order.history, order.new_steps = order.timeline, []


@dataclass
class _Held:
    """What a transaction holds: the orders it locked, loaded with a lock or saved, by
    id, and the saves it has not written yet, in order."""

    orders: dict[UUID, Order] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)


def _write_updates(session: Session, held: _Held) -> None:
    if held.updates:
        session.execute(_UPDATE, held.updates)


_HELD = TransactionLocal("order_service.orders.held", _Held, _write_updates)


def _new_steps(order: Order) -> dict[str, Any]:
    """The parameters of `_ADD_STEPS`: the order's id and its new steps as arrays."""
    return {
        "order_id_": order.order_id,
        "steps": [s.step for s in order.new_steps],
        "ats": [s.at for s in order.new_steps],
        "details": [s.detail for s in order.new_steps],
    }


# A literal, not a bound parameter: only then can the plan of a prepared statement that
# PostgreSQL keeps for every execution (its generic plan) use the partial index of the
# PENDING orders; with a parameter it scanned every order.
_PENDING = orders.c.status == sa.literal_column(f"'{Status.PENDING.value}'")
_COUNT_PENDING = sa.select(sa.func.count()).select_from(orders).where(_PENDING)


async def count_pending(session: AsyncSession) -> int:
    """How many orders are PENDING (an index-only count: the partial index holds just those)."""
    return int(await session.scalar(_COUNT_PENDING) or 0)


async def find_by_idempotency_key(session: AsyncSession, key: str) -> tuple[UUID, str] | None:
    """`(order_id, request_fingerprint)` of the order created with `key`, if any."""
    row = (
        await session.execute(
            sa.select(orders.c.order_id, orders.c.request_fingerprint).where(
                orders.c.idempotency_key == key
            )
        )
    ).first()
    return (row.order_id, row.request_fingerprint) if row else None


MAX_DOUBLINGS = 4
"""A decision is sent again after the timeout, then 2x, 4x, 8x and at most 16x later."""


async def overdue(
    session: AsyncSession, now: datetime, timeout: timedelta, limit: int
) -> list[UUID]:
    """Ids of up to `limit` overdue orders, locked, the oldest first: orders PENDING for
    longer than `timeout`, then orders whose decision has awaited answers for longer than
    `timeout` doubled per re-send.

    SKIP LOCKED leaves orders that a consumer or a request holds right now to the next sweep.
    """
    waited = sa.func.make_interval(
        0,
        0,
        0,
        0,
        0,
        0,
        timeout.total_seconds() * sa.func.power(2, sa.func.least(orders.c.resends, MAX_DOUBLINGS)),
    )
    found: list[UUID] = []
    for late in (
        sa.and_(_PENDING, orders.c.created_at < now - timeout),
        sa.and_(orders.c.awaiting_since.is_not(None), orders.c.awaiting_since + waited < now),
    ):
        if len(found) < limit:
            rows = await session.execute(
                sa.select(orders.c.order_id)
                .where(late)
                .order_by(orders.c.created_at)
                .limit(limit - len(found))
                .with_for_update(skip_locked=True)
            )
            found += rows.scalars()
    return found


async def products(session: AsyncSession, skus: Iterable[str]) -> dict[str, Product]:
    """The replica's products among `skus`, by SKU."""
    rows = await session.execute(_PRODUCTS, {"skus": list(skus)})
    return {r.sku: Product(r.sku, r.name, r.unit_price_cents) for r in rows}


async def upsert_product(
    session: AsyncSession, product: Product, version: int, now: datetime
) -> None:
    """Store a product unless the replica already has this or a newer version."""
    values = {**vars(product), "version": version, "updated_at": now}
    statement = insert(catalog).values(values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[catalog.c.sku],
            set_={k: statement.excluded[k] for k in values if k != "sku"},
            where=catalog.c.version < statement.excluded.version,
        )
    )
