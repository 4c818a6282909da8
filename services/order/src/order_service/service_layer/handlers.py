"""Use cases of the order service, each one transaction: load, let the order decide, save, publish."""

import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis import telemetry
from chassis.consumer import Delivery
from chassis.outbox import Outbox
from order_service.adapters import repository
from order_service.domain.model import (
    Order,
    Outcome,
    Product,
    Reason,
    Status,
    UnknownSkus,
    price_lines,
)
from order_service.service_layer import metrics
from shared_contracts import Envelope, Topic
from shared_contracts.inventory import v1 as inventory
from shared_contracts.order import v1 as order_events
from shared_contracts.order import v2 as order_events_v2
from shared_contracts.payment import v1 as payment

log = logging.getLogger(__name__)

Event = BaseModel | list[BaseModel]
"""An event to publish: one payload, or the same event in several versions."""

Publish = Callable[[str, str, Event], Awaitable[Envelope]]
"""Writes an event to the outbox: `Outbox.add` bound to a session, or `Delivery.publish`."""

CURRENCY = "EUR"
"""The one currency of this system: prices and totals are euro cents."""


class OrderNotFound(Exception):
    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"order {order_id} not found")


class UnknownCursor(Exception):
    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"after: no order {order_id}; pass the `next` of a previous page")


class IdempotencyKeyReused(Exception):
    def __init__(self) -> None:
        super().__init__("Idempotency-Key was already used with a different request body")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Placement:
    """A request to place an order: the customer, `(sku, quantity)` pairs, an idempotency key."""

    customer_id: str
    items: list[tuple[str, int]]
    idempotency_key: str | None = None
    trace: Mapping[str, str] = field(default_factory=dict)
    """The trace context of the request (W3C headers): placed in a batch, by another task,
    the order and its events still continue the request's trace."""


async def place_orders(
    sessions: async_sessionmaker[AsyncSession], outbox: Outbox, placements: Sequence[Placement]
) -> list[Order | Exception]:
    """Place several orders in one transaction; for each, its order or the error refusing it.

    Each order is priced from the catalog replica, stored PENDING, and its OrderCreated
    published. One transaction for all costs one BEGIN, one catalog read, one insert
    statement per table (its rows sent in one round trip), one outbox insert and one
    COMMIT, however many orders it holds (the intake batches the requests that arrive
    together, `service_layer/intake.py`). An unknown SKU refuses its own order only. A
    repeated idempotency key fails the insert of them all: then each is placed alone,
    and a repeat of a request returns the first order, even when the two race, since
    the unique key lets one insert win and the other reads it. A repeat is found when
    its insert fails, not looked up first: a lookup would cost every first request,
    nearly all of them, a transaction more. (A repeat prices again before its insert
    fails, which works because the catalog never loses a SKU.) An error of the database
    itself is raised.
    """
    try:
        async with sessions.begin() as session:
            return await _place(session, outbox, placements)
    except IntegrityError:
        if len(placements) > 1:
            return [await _place_alone(sessions, outbox, placement) for placement in placements]
        placement = placements[0]
        if placement.idempotency_key is None:
            raise
        try:
            existing = await _order_for_key(sessions, placement)
        except IdempotencyKeyReused as reused:
            return [reused]
        if existing is None:
            raise
        return [existing]


async def _place_alone(
    sessions: async_sessionmaker[AsyncSession], outbox: Outbox, placement: Placement
) -> Order | Exception:
    """One order of a batch that failed, in a transaction of its own; what fails it is its own."""
    try:
        [result] = await place_orders(sessions, outbox, [placement])
    except Exception as failed:
        return failed
    return result


async def _place(
    session: AsyncSession, outbox: Outbox, placements: Sequence[Placement]
) -> list[Order | Exception]:
    skus = {sku for placement in placements for sku, _ in placement.items}
    catalog = await repository.products(session, skus)
    results: list[Order | Exception] = []
    placed: list[tuple[Placement, Order]] = []
    for placement in placements:
        try:
            lines = price_lines(placement.items, catalog)
        except UnknownSkus as refused:
            results.append(refused)
            continue
        order = Order.place(uuid.uuid4(), placement.customer_id, lines, _now())
        results.append(order)
        placed.append((placement, order))
    decisions = [_decisions(order) for _, order in placed]
    await repository.add(session, [(o, p.idempotency_key, _fingerprint(p)) for p, o in placed])
    for (placement, order), events in zip(placed, decisions, strict=True):
        attributes = {"order.id": str(order.order_id)}
        with telemetry.span(
            "place order", attributes, context=telemetry.context_of(placement.trace)
        ):
            await _publish(order, events, partial(outbox.add, session))
        metrics.count_started(session)
    return results


async def _order_for_key(
    sessions: async_sessionmaker[AsyncSession], placement: Placement
) -> Order | None:
    assert placement.idempotency_key is not None
    async with sessions.begin() as session:
        found = await repository.find_by_idempotency_key(session, placement.idempotency_key)
        if found is None:
            return None
        order_id, first_fingerprint = found
        if first_fingerprint != _fingerprint(placement):
            raise IdempotencyKeyReused()
        return await repository.get(session, order_id)


def _fingerprint(placement: Placement) -> str | None:
    """What identifies the request behind an idempotency key; None without a key."""
    if placement.idempotency_key is None:
        return None
    canonical = json.dumps([placement.customer_id, placement.items], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def get_order(sessions: async_sessionmaker[AsyncSession], order_id: UUID) -> Order:
    async with sessions.begin() as session:
        order = await repository.get(session, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order


async def list_orders(
    sessions: async_sessionmaker[AsyncSession],
    *,
    limit: int,
    after: UUID | None = None,
    status: Status | None = None,
    customer_id: str | None = None,
) -> tuple[list[Order], UUID | None]:
    """A page of orders in creation order after the order `after`, and the next cursor.

    The cursor is the id of the page's last order, or None when no order follows it.
    """
    async with sessions.begin() as session:
        position = None
        if after is not None:
            position = await repository.position(session, after)
            if position is None:
                raise UnknownCursor(after)
        found = await repository.page(
            session, limit=limit + 1, after=position, status=status, customer_id=customer_id
        )
    orders = found[:limit]
    return orders, orders[-1].order_id if len(found) > limit else None


async def cancel_order(
    sessions: async_sessionmaker[AsyncSession], outbox: Outbox, order_id: UUID
) -> Order:
    """Customer cancellation of a pending or confirmed order."""
    async with sessions.begin() as session:
        order = await repository.get(session, order_id, lock=True)
        if order is None:
            raise OrderNotFound(order_id)
        order.cancel(Reason.CUSTOMER_CANCELLED, _now())
        await _save(order, session, partial(outbox.add, session))
    return order


SWEEP_BATCH = 50
"""Orders per sweep transaction: short, so the consumer never waits long for a row."""


async def chase_overdue_orders(
    sessions: async_sessionmaker[AsyncSession], outbox: Outbox, timeout: timedelta
) -> int:
    """Time out orders PENDING for longer than `timeout`, and send again the decisions
    that have waited too long for an answer; return how many orders it touched."""
    now, touched = _now(), 0
    while True:
        async with sessions.begin() as session:
            ids = await repository.overdue(session, now, timeout, limit=SWEEP_BATCH)
            for order_id in ids:
                order = await repository.get(session, order_id)
                assert order is not None  # overdue() locked it
                order.overdue(now)
                await _save(order, session, partial(outbox.add, session))
        touched += len(ids)
        if len(ids) < SWEEP_BATCH:
            return touched


async def on_payment_succeeded(delivery: Delivery, event: payment.PaymentSucceeded) -> None:
    await _answer(delivery, event.order_id, lambda o: o.payment_answered(Outcome.SUCCEEDED, _now()))


async def on_payment_failed(delivery: Delivery, event: payment.PaymentFailed) -> None:
    await _answer(
        delivery,
        event.order_id,
        lambda o: o.payment_answered(Outcome.FAILED, _now(), reason=event.reason),
    )


async def on_stock_reserved(delivery: Delivery, event: inventory.StockReserved) -> None:
    await _answer(delivery, event.order_id, lambda o: o.stock_answered(Outcome.SUCCEEDED, _now()))


async def on_stock_reservation_failed(
    delivery: Delivery, event: inventory.StockReservationFailed
) -> None:
    await _answer(
        delivery,
        event.order_id,
        lambda o: o.stock_answered(Outcome.FAILED, _now(), reason=event.reason, skus=event.skus),
    )


async def on_payment_refunded(delivery: Delivery, event: payment.PaymentRefunded) -> None:
    await _answer(
        delivery,
        event.order_id,
        lambda o: o.answered("PaymentRefunded", _now(), amount_cents=event.amount_cents),
    )


async def on_payment_voided(delivery: Delivery, event: payment.PaymentVoided) -> None:
    await _answer(delivery, event.order_id, lambda o: o.answered("PaymentVoided", _now()))


async def on_stock_released(delivery: Delivery, event: inventory.StockReleased) -> None:
    await _answer(delivery, event.order_id, lambda o: o.answered("StockReleased", _now()))


async def on_stock_sold(delivery: Delivery, event: inventory.StockSold) -> None:
    await _answer(delivery, event.order_id, lambda o: o.answered("StockSold", _now()))


async def on_product_updated(delivery: Delivery, event: inventory.ProductUpdated) -> None:
    """Keep the catalog replica current; older versions arriving late are ignored."""
    product = Product(event.sku, event.name, event.unit_price_cents)
    await repository.upsert_product(delivery.session, product, event.version, _now())


Answer = (
    payment.PaymentSucceeded
    | payment.PaymentFailed
    | payment.PaymentRefunded
    | payment.PaymentVoided
    | inventory.StockReserved
    | inventory.StockReservationFailed
    | inventory.StockReleased
    | inventory.StockSold
)
"""An event about one order that the saga waits for or takes note of."""


async def lock_answered_orders(session: AsyncSession, events: Sequence[BaseModel]) -> None:
    """The consumer's prefetch: lock the orders that a transaction's answers are about.

    One statement for all, where each answer's `get` would run its own.
    """
    await repository.lock_all(session, [e.order_id for e in events if isinstance(e, Answer)])


async def _answer(delivery: Delivery, order_id: UUID, apply: Callable[[Order], None]) -> None:
    order = await repository.get(delivery.session, order_id, lock=True)
    if order is None:
        log.warning("%s for unknown order %s ignored", delivery.envelope.event_type, order_id)
        return
    apply(order)
    await _save(order, delivery.session, delivery.publish)


async def _save(order: Order, session: AsyncSession, publish: Publish) -> None:
    """Save a loaded order and publish the decisions it just took."""
    decisions = _decisions(order)
    metrics.count_decisions(order, session)  # before `update` saves (and clears) the new steps
    repository.update(session, order, _now())
    await _publish(order, decisions, publish)


def _decisions(order: Order) -> list[Event]:
    """The events other services act on among the order's new steps."""
    events = (_integration_event(order, step.step) for step in order.new_steps)
    return [event for event in events if event is not None]


async def _publish(order: Order, events: list[Event], publish: Publish) -> None:
    for event in events:
        await publish(Topic.ORDER_EVENTS, str(order.order_id), event)


def _integration_event(order: Order, step: str) -> Event | None:
    """Translate a step of the order into the event other services act on, if it is one."""
    if step == "DecisionResent":
        assert order.decision is not None
        step = order.decision
    if step == "OrderCreated":
        # OrderCreated v1's deprecation window (docs/evolving-contracts.md): every order
        # goes out in both versions until no consumer reads v1 any more.
        return [_order_created_v1(order), _order_created_v2(order)]
    if step == "OrderConfirmed":
        return order_events.OrderConfirmed(order_id=order.order_id)
    if step == "OrderCancelled":
        assert order.reason is not None
        return order_events.OrderCancelled(
            order_id=order.order_id, reason=order_events.CancellationReason(order.reason)
        )
    return None


def _order_created_v1(order: Order) -> order_events.OrderCreated:
    return order_events.OrderCreated(
        order_id=order.order_id,
        customer_id=order.customer_id,
        items=[
            order_events.OrderLine(
                sku=line.sku, quantity=line.quantity, unit_price_cents=line.unit_price_cents
            )
            for line in order.lines
        ],
        total_cents=order.total_cents,
    )


def _order_created_v2(order: Order) -> order_events_v2.OrderCreated:
    return order_events_v2.OrderCreated(
        order_id=order.order_id,
        customer_id=order.customer_id,
        lines=[
            order_events_v2.OrderLine(
                sku=line.sku,
                quantity=line.quantity,
                unit_price=_money(line.unit_price_cents),
            )
            for line in order.lines
        ],
        total=_money(order.total_cents),
    )


def _money(cents: int) -> order_events_v2.Money:
    return order_events_v2.Money(amount_cents=cents, currency=CURRENCY)
