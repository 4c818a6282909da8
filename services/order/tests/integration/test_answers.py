"""Answers applied together, as a consumer's fetch applies them: one transaction, the
orders loaded by one statement before the handlers and saved by one at its commit."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.consumer import Delivery, Handler
from chassis.db import create_engine, create_sessionmaker
from chassis.outbox import Outbox, new_envelope
from chassis.tables import outbox as outbox_table
from order_service.adapters import repository
from order_service.domain.model import Order, Product, Status
from order_service.service_layer import handlers
from order_service.service_layer.handlers import Placement
from shared_contracts.inventory.v1 import StockReserved, StockSold
from shared_contracts.payment.v1 import PaymentSucceeded

pytestmark = pytest.mark.integration

SKU = "sku-answers"


@pytest.fixture(scope="module")
async def sessions(database_url) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url("order"))
    sessions = create_sessionmaker(engine)
    async with sessions.begin() as session:
        await repository.upsert_product(session, Product(SKU, "A product", 250), 1, _now())
    yield sessions
    await engine.dispose()


def _now() -> datetime:
    return datetime.now(UTC)


async def _place(sessions: async_sessionmaker[AsyncSession], outbox: Outbox) -> Order:
    [order] = await handlers.place_orders(sessions, outbox, [Placement("alice", [(SKU, 2)])])
    assert isinstance(order, Order)
    return order


Answer = tuple[Handler, BaseModel]


async def _apply(session: AsyncSession, outbox: Outbox, answers: list[Answer]) -> None:
    """Apply `answers` in the session's transaction, as the consumer applies a fetch:
    its prefetch first, then each handler."""
    await handlers.lock_answered_orders(session, [answer for _, answer in answers])
    for handler, answer in answers:
        envelope = new_envelope("test", str(uuid.uuid4()), answer)
        await handler(Delivery(session, envelope, outbox), answer)


def _saga(order_id: uuid.UUID) -> list[Answer]:
    """The answers of a saga that succeeds, in the order they come."""
    return [
        (handlers.on_stock_reserved, StockReserved(order_id=order_id, items=[])),
        (
            handlers.on_payment_succeeded,
            PaymentSucceeded(order_id=order_id, customer_id="alice", amount_cents=500),
        ),
        (handlers.on_stock_sold, StockSold(order_id=order_id, items=[])),
    ]


async def test_answers_for_orders_in_one_transaction_load_and_save_them_by_a_statement_each(
    sessions, statements
):
    outbox = Outbox("order")
    first, second = await _place(sessions, outbox), await _place(sessions, outbox)
    statements.clear()

    async with sessions.begin() as session:
        await _apply(session, outbox, [*_saga(first.order_id), *_saga(second.order_id)])

    # The prefetch loads and locks both orders with one statement, and every answer
    # finds its order held. The six saves go as one statement of six parameter sets.
    loads = [s for s in statements if s[0].startswith("SELECT")]
    saves = [s for s in statements if s[0].startswith("WITH saved")]
    assert loads == [("SELECT orders.order_id, orders.customer_id,", 1)]
    assert saves == [("WITH saved AS", 6)]
    async with sessions.begin() as session:
        for placed in (first, second):
            order = await repository.get(session, placed.order_id)
            assert order is not None
            assert order.status is Status.CONFIRMED
            assert [s.step for s in order.history] == [
                "OrderCreated",
                "StockReserved",
                "PaymentSucceeded",
                "OrderConfirmed",
                "StockSold",
            ]
            assert order.awaiting_since is None
        confirmations = await session.scalar(
            sa.select(sa.func.count())
            .select_from(outbox_table)
            .where(outbox_table.c.key.in_([str(first.order_id), str(second.order_id)]))
            .where(outbox_table.c.envelope.contains('"OrderConfirmed"'))
        )
    assert confirmations == 2


async def test_answers_of_a_transaction_that_rolls_back_are_not_saved(sessions):
    outbox = Outbox("order")
    order = await _place(sessions, outbox)

    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            await _apply(session, outbox, _saga(order.order_id)[:2])
            raise RuntimeError("a later event of the fetch fails")

    async with sessions.begin() as session:
        await _apply(session, outbox, _saga(order.order_id)[:1])
    async with sessions.begin() as session:
        reloaded = await repository.get(session, order.order_id)
    assert reloaded is not None
    assert reloaded.status is Status.PENDING
    assert [s.step for s in reloaded.history] == ["OrderCreated", "StockReserved"]


async def test_an_answer_for_an_order_not_held_loads_it_itself(sessions, statements):
    """Without the prefetch (or for an order it did not find), `get` loads and locks it."""
    outbox = Outbox("order")
    order = await _place(sessions, outbox)
    statements.clear()

    async with sessions.begin() as session:
        for handler, answer in _saga(order.order_id)[:2]:
            await handler(Delivery(session, new_envelope("test", "k", answer), outbox), answer)
        unknown = StockReserved(order_id=uuid.uuid4(), items=[])
        await _apply(session, outbox, [(handlers.on_stock_reserved, unknown)])

    loads = [s for s in statements if s[0].startswith("SELECT")]
    assert len(loads) == 3, "the order once, the unknown order by the prefetch and by `get`"
    async with sessions.begin() as session:
        reloaded = await repository.get(session, order.order_id)
    assert reloaded is not None
    assert reloaded.status is Status.CONFIRMED
