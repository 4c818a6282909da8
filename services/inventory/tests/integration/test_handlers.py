"""The consumer handlers, called directly in their own transactions on a real database."""

import asyncio
import json
import uuid

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.consumer import Delivery
from chassis.outbox import Outbox, new_envelope
from chassis.tables import outbox
from inventory_service.adapters.orm import reservations
from inventory_service.main import HANDLERS
from inventory_service.service_layer import handlers
from shared_contracts import Envelope, Topic
from shared_contracts.order import v1 as order_v1

pytestmark = pytest.mark.integration

Sessions = async_sessionmaker[AsyncSession]
OUTBOX = Outbox("inventory")


def new_sku() -> str:
    return f"SKU-{uuid.uuid4().hex[:10]}"


async def apply_together(
    session: AsyncSession, events: list[BaseModel], *, prefetch: bool = True
) -> list[Envelope]:
    """Apply `events` in the session's transaction, as the consumer applies a fetch: its
    prefetch first (unless not), then each event's handler; return their envelopes."""
    if prefetch:
        await handlers.lock_ordered_stock(session, events)
    envelopes = []
    for payload in events:
        envelope = new_envelope("order", str(getattr(payload, "order_id", "")), payload)
        await HANDLERS[type(payload)](Delivery(session, envelope, OUTBOX), payload)
        envelopes.append(envelope)
    return envelopes


async def apply(sessions: Sessions, payload: BaseModel) -> Envelope:
    """Apply one event in a transaction of its own, as the consumer does."""
    async with sessions.begin() as session:
        [envelope] = await apply_together(session, [payload])
    return envelope


def created(order_id: uuid.UUID, *lines: tuple[str, int]) -> order_v1.OrderCreated:
    items = [order_v1.OrderLine(sku=s, quantity=q, unit_price_cents=100) for s, q in lines]
    return order_v1.OrderCreated(
        order_id=order_id, customer_id="c1", items=items, total_cents=100 * sum(q for _, q in lines)
    )


async def create(sessions: Sessions, order_id: uuid.UUID, *lines: tuple[str, int]) -> Envelope:
    return await apply(sessions, created(order_id, *lines))


async def confirm(sessions: Sessions, order_id: uuid.UUID) -> Envelope:
    return await apply(sessions, order_v1.OrderConfirmed(order_id=order_id))


async def cancel(sessions: Sessions, order_id: uuid.UUID) -> Envelope:
    return await apply(
        sessions, order_v1.OrderCancelled(order_id=order_id, reason="CUSTOMER_CANCELLED")
    )


async def stock(sessions: Sessions, sku: str, amount: int) -> None:
    """PUT a product the way the API does."""
    async with sessions.begin() as session:
        await handlers.put_product(session, OUTBOX, sku, f"Product {sku}", 100, amount)


async def buckets(sessions: Sessions, sku: str) -> tuple[int, int, int]:
    """`(available, reserved, sold)` of `sku`."""
    async with sessions() as session:
        row = (
            await session.execute(
                sa.text("SELECT available, reserved, sold FROM products WHERE sku = :sku"),
                {"sku": sku},
            )
        ).one()
    return row.available, row.reserved, row.sold


async def statuses(sessions: Sessions, order_id: uuid.UUID) -> dict[str, tuple[int, str]]:
    """`{sku: (quantity, status)}` of the order's reservations."""
    query = sa.select(reservations).where(reservations.c.order_id == order_id)
    async with sessions() as session:
        return {r.sku: (r.quantity, r.status) for r in await session.execute(query)}


async def emitted(sessions: Sessions, order_id: uuid.UUID) -> list[Envelope]:
    """The events the outbox holds for `order_id`, oldest first, all on `inventory.events`."""
    query = sa.select(outbox).where(outbox.c.key == str(order_id)).order_by(outbox.c.id)
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    assert {row.topic for row in rows} <= {Topic.INVENTORY_EVENTS.value}
    return [Envelope.model_validate(json.loads(row.envelope)) for row in rows]


class TestOrderCreated:
    async def test_every_line_is_reserved(self, sessions: Sessions) -> None:
        a, b, order_id = new_sku(), new_sku(), uuid.uuid4()
        await stock(sessions, a, 5)
        await stock(sessions, b, 2)
        cause = await create(sessions, order_id, (a, 3), (b, 2))

        assert await buckets(sessions, a) == (2, 3, 0)
        assert await buckets(sessions, b) == (0, 2, 0)
        assert await statuses(sessions, order_id) == {a: (3, "reserved"), b: (2, "reserved")}
        [event] = await emitted(sessions, order_id)
        assert (event.event_type, event.causation_id, event.producer) == (
            "StockReserved",
            cause.event_id,
            "inventory",
        )
        assert event.payload == {
            "order_id": str(order_id),
            "items": [{"sku": s, "quantity": q} for s, q in sorted([(a, 3), (b, 2)])],
        }

    async def test_one_short_line_reserves_nothing(self, sessions: Sessions) -> None:
        a, b, unknown, order_id = new_sku(), new_sku(), new_sku(), uuid.uuid4()
        await stock(sessions, a, 5)
        await stock(sessions, b, 1)
        cause = await create(sessions, order_id, (a, 3), (b, 2), (unknown, 1))

        assert await buckets(sessions, a) == (5, 0, 0)
        assert await buckets(sessions, b) == (1, 0, 0)
        assert await statuses(sessions, order_id) == {}
        [event] = await emitted(sessions, order_id)
        assert (event.event_type, event.causation_id) == ("StockReservationFailed", cause.event_id)
        assert event.payload == {
            "order_id": str(order_id),
            "reason": "OUT_OF_STOCK",
            "skus": sorted([b, unknown]),
        }

    async def test_lines_of_one_sku_are_summed(self, sessions: Sessions) -> None:
        sku, order_id = new_sku(), uuid.uuid4()
        await stock(sessions, sku, 5)
        await create(sessions, order_id, (sku, 2), (sku, 3))

        assert await buckets(sessions, sku) == (0, 5, 0)
        assert await statuses(sessions, order_id) == {sku: (5, "reserved")}
        [event] = await emitted(sessions, order_id)
        assert event.payload["items"] == [{"sku": sku, "quantity": 5}]

    async def test_lines_of_one_sku_are_summed_before_checking_stock(
        self, sessions: Sessions
    ) -> None:
        sku, order_id = new_sku(), uuid.uuid4()
        await stock(sessions, sku, 4)
        await create(sessions, order_id, (sku, 2), (sku, 3))

        assert await buckets(sessions, sku) == (4, 0, 0)
        [event] = await emitted(sessions, order_id)
        assert (event.event_type, event.payload["skus"]) == ("StockReservationFailed", [sku])

    async def test_an_order_already_reserved_is_left_alone(self, sessions: Sessions) -> None:
        sku, order_id = new_sku(), uuid.uuid4()
        await stock(sessions, sku, 5)
        await create(sessions, order_id, (sku, 2))
        await create(sessions, order_id, (sku, 2))

        assert await buckets(sessions, sku) == (3, 2, 0)
        assert [e.event_type for e in await emitted(sessions, order_id)] == ["StockReserved"]

    async def test_concurrent_orders_for_the_last_units_never_oversell(
        self, sessions: Sessions
    ) -> None:
        sku, orders = new_sku(), [uuid.uuid4() for _ in range(20)]
        await stock(sessions, sku, 5)
        await asyncio.gather(*(create(sessions, order_id, (sku, 1)) for order_id in orders))

        assert await buckets(sessions, sku) == (0, 5, 0)
        outcomes = [e.event_type for o in orders for e in await emitted(sessions, o)]
        assert sorted(outcomes) == ["StockReservationFailed"] * 15 + ["StockReserved"] * 5
        held = [o for o in orders if await statuses(sessions, o)]
        assert len(held) == 5


class TestOrderConfirmed:
    async def test_held_units_become_sold(self, sessions: Sessions) -> None:
        a, b, order_id = new_sku(), new_sku(), uuid.uuid4()
        await stock(sessions, a, 5)
        await stock(sessions, b, 5)
        await create(sessions, order_id, (a, 1), (b, 4))
        await confirm(sessions, order_id)

        assert await buckets(sessions, a) == (4, 0, 1)
        assert await buckets(sessions, b) == (1, 0, 4)
        assert await statuses(sessions, order_id) == {a: (1, "sold"), b: (4, "sold")}
        reserved, sold = await emitted(sessions, order_id)
        assert (sold.event_type, sold.payload) == ("StockSold", reserved.payload)

    async def test_a_repeated_confirmation_sells_once_and_answers_again(
        self, sessions: Sessions
    ) -> None:
        sku, order_id = new_sku(), uuid.uuid4()
        await stock(sessions, sku, 5)
        await create(sessions, order_id, (sku, 2))
        await confirm(sessions, order_id)
        await confirm(sessions, order_id)

        assert await buckets(sessions, sku) == (3, 0, 2)
        _, first, again = await emitted(sessions, order_id)
        assert (again.event_type, again.payload) == ("StockSold", first.payload)

    async def test_confirming_an_order_with_nothing_reserved_does_nothing(
        self, sessions: Sessions
    ) -> None:
        sku, order_id = new_sku(), uuid.uuid4()
        await stock(sessions, sku, 1)
        await create(sessions, order_id, (sku, 2))  # fails: nothing is held
        await confirm(sessions, order_id)
        await confirm(sessions, uuid.uuid4())

        assert await buckets(sessions, sku) == (1, 0, 0)
        assert await statuses(sessions, order_id) == {}


class TestOrderCancelled:
    async def test_held_units_go_back_on_hand(self, sessions: Sessions) -> None:
        a, b, order_id = new_sku(), new_sku(), uuid.uuid4()
        await stock(sessions, a, 5)
        await stock(sessions, b, 5)
        await create(sessions, order_id, (a, 2), (b, 5))
        cause = await cancel(sessions, order_id)

        assert await buckets(sessions, a) == (5, 0, 0)
        assert await buckets(sessions, b) == (5, 0, 0)
        assert await statuses(sessions, order_id) == {a: (2, "released"), b: (5, "released")}
        reserved, released = await emitted(sessions, order_id)
        assert (released.event_type, released.causation_id) == ("StockReleased", cause.event_id)
        assert released.payload == reserved.payload

    async def test_a_confirmed_order_is_restocked(self, sessions: Sessions) -> None:
        sku, order_id = new_sku(), uuid.uuid4()
        await stock(sessions, sku, 5)
        await create(sessions, order_id, (sku, 3))
        await confirm(sessions, order_id)
        await cancel(sessions, order_id)

        assert await buckets(sessions, sku) == (5, 0, 0)
        assert await statuses(sessions, order_id) == {sku: (3, "released")}
        events = await emitted(sessions, order_id)
        assert [e.event_type for e in events] == ["StockReserved", "StockSold", "StockReleased"]
        assert events[2].payload["items"] == [{"sku": sku, "quantity": 3}]

    async def test_cancelling_with_nothing_reserved_answers_with_no_items(
        self, sessions: Sessions
    ) -> None:
        sku, failed, never_seen = new_sku(), uuid.uuid4(), uuid.uuid4()
        await stock(sessions, sku, 1)
        await create(sessions, failed, (sku, 2))
        await cancel(sessions, failed)
        await cancel(sessions, never_seen)

        assert await buckets(sessions, sku) == (1, 0, 0)
        events = await emitted(sessions, failed)
        assert [e.event_type for e in events] == ["StockReservationFailed", "StockReleased"]
        [answer] = await emitted(sessions, never_seen)
        assert (answer.event_type, answer.payload["items"]) == ("StockReleased", [])

    async def test_an_order_created_after_its_cancellation_reserves_nothing(
        self, sessions: Sessions
    ) -> None:
        # A lost OrderCreated replayed from a DLQ, say, once the order was cancelled.
        sku, order_id = new_sku(), uuid.uuid4()
        await stock(sessions, sku, 5)
        await cancel(sessions, order_id)
        await create(sessions, order_id, (sku, 2))

        assert await buckets(sessions, sku) == (5, 0, 0)
        assert await statuses(sessions, order_id) == {}
        assert [e.event_type for e in await emitted(sessions, order_id)] == ["StockReleased"]

    async def test_cancelling_twice_releases_once(self, sessions: Sessions) -> None:
        sku, order_id = new_sku(), uuid.uuid4()
        await stock(sessions, sku, 5)
        await create(sessions, order_id, (sku, 2))
        await cancel(sessions, order_id)
        await cancel(sessions, order_id)
        await confirm(sessions, order_id)  # a late confirmation cannot sell released units

        assert await buckets(sessions, sku) == (5, 0, 0)
        reserved, released, again, sold = await emitted(sessions, order_id)
        assert [e.event_type for e in (released, again, sold)] == [
            "StockReleased",
            "StockReleased",
            "StockSold",
        ]
        assert released.payload == again.payload == reserved.payload
        assert sold.payload["items"] == []


class TestStockConservation:
    async def test_a_mixed_scenario_conserves_units_and_leaves_nothing_held(
        self, sessions: Sessions
    ) -> None:
        skus = [new_sku() for _ in range(3)]
        for sku in skus:
            await stock(sessions, sku, 6)
        orders = [uuid.uuid4() for _ in range(12)]
        await asyncio.gather(
            *(
                create(sessions, o, (skus[i % 3], 2), (skus[(i + 1) % 3], 1))
                for i, o in enumerate(orders)
            )
        )
        # Settle every order, as the order service would: confirm some, cancel the rest.
        await asyncio.gather(*(confirm(sessions, o) for o in orders[::2]))
        await asyncio.gather(*(cancel(sessions, o) for o in orders[1::2]))
        await asyncio.gather(*(cancel(sessions, o) for o in orders[::4]))  # customer cancels

        for sku in skus:
            available, reserved, sold = await buckets(sessions, sku)
            assert (available + reserved + sold, reserved) == (6, 0)

    async def test_reservations_sales_and_releases_at_once_never_deadlock(
        self, sessions: Sessions
    ) -> None:
        # A sale or release locks each reservation with its product, a reservation only
        # products; both go in SKU order, so orders of overlapping SKUs, with their lines
        # in either order, wait on each other but never in a cycle (which PostgreSQL
        # would break by failing one of them).
        skus = sorted(new_sku() for _ in range(3))
        for sku in skus:
            await stock(sessions, sku, 100)
        first, second = [uuid.uuid4() for _ in range(12)], [uuid.uuid4() for _ in range(12)]
        lines = [((skus[i % 3], 1), (skus[(i + 2) % 3], 2)) for i in range(12)]
        await asyncio.gather(
            *(create(sessions, o, *ls) for o, ls in zip(first, lines, strict=True))
        )
        await asyncio.gather(
            *(create(sessions, o, *reversed(ls)) for o, ls in zip(second, lines, strict=True)),
            *(confirm(sessions, o) for o in first[::2]),
            *(cancel(sessions, o) for o in first[1::2]),
        )

        held = [sum(q for q, _ in (await statuses(sessions, o)).values()) for o in second]
        assert held == [3] * 12
        for sku in skus:
            available, reserved, sold = await buckets(sessions, sku)
            # Each SKU is in 8 of the 24 orders, 12 units in each half: the first half's
            # sold or back on hand, the second half's held.
            assert (available + reserved + sold, reserved) == (100, 12)


async def ledger(sessions: Sessions, sku: str) -> tuple[int, int, int, int]:
    """`(available, reserved, sold, received)` of `sku`."""
    async with sessions() as session:
        row = (
            await session.execute(
                sa.text(
                    "SELECT available, reserved, sold, received FROM products WHERE sku = :sku"
                ),
                {"sku": sku},
            )
        ).one()
    return row.available, row.reserved, row.sold, row.received


class TestReceived:
    async def test_puts_add_the_change_on_hand_and_order_events_never_touch_it(
        self, sessions: Sessions
    ) -> None:
        sku = new_sku()
        held, sold, released = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        await stock(sessions, sku, 10)
        assert await ledger(sessions, sku) == (10, 0, 0, 10)
        await stock(sessions, sku, 12)
        assert await ledger(sessions, sku) == (12, 0, 0, 12)

        await create(sessions, held, (sku, 3))
        await create(sessions, sold, (sku, 4))
        await confirm(sessions, sold)
        await create(sessions, released, (sku, 2))
        await cancel(sessions, released)
        assert await ledger(sessions, sku) == (5, 3, 4, 12)

        await stock(sessions, sku, 1)  # 5 on hand -> 1: four units leave the books
        assert await ledger(sessions, sku) == (1, 3, 4, 8)
        await cancel(sessions, sold)  # a confirmed order is taken back
        await confirm(sessions, held)
        assert await ledger(sessions, sku) == (5, 0, 3, 8)
        await stock(sessions, sku, 0)
        assert await ledger(sessions, sku) == (0, 0, 3, 3)

    async def test_concurrent_orders_and_puts_keep_the_buckets_summing_to_received(
        self, sessions: Sessions
    ) -> None:
        sku = new_sku()
        await stock(sessions, sku, 20)
        orders = [uuid.uuid4() for _ in range(8)]
        await asyncio.gather(
            *(create(sessions, o, (sku, 2)) for o in orders),
            *(stock(sessions, sku, n) for n in (5, 9, 3)),
        )
        await asyncio.gather(
            *(confirm(sessions, o) for o in orders[::2]),
            *(cancel(sessions, o) for o in orders[1::2]),
            stock(sessions, sku, 7),
        )
        available, reserved, sold, received = await ledger(sessions, sku)
        assert available + reserved + sold == received
        assert reserved == 0


class TestAFetchInOneTransaction:
    """A consumer applies a fetch's events in one transaction: `hold` loads and locks
    what they all change with three statements, and their changes are written with one
    at the commit."""

    async def test_events_of_many_orders_take_three_reads_and_one_write(
        self, sessions: Sessions, statements: list[tuple[str, int]]
    ) -> None:
        a, b = new_sku(), new_sku()
        await stock(sessions, a, 10)
        await stock(sessions, b, 10)
        to_confirm, to_cancel, new = uuid.uuid4(), uuid.uuid4(), [uuid.uuid4() for _ in range(3)]
        await create(sessions, to_confirm, (a, 1), (b, 1))
        await create(sessions, to_cancel, (b, 2))
        statements.clear()

        async with sessions.begin() as session:
            await apply_together(
                session,
                [
                    created(new[0], (a, 2)),
                    order_v1.OrderConfirmed(order_id=to_confirm),
                    created(new[1], (a, 1), (b, 3)),
                    order_v1.OrderCancelled(order_id=to_cancel, reason="CUSTOMER_CANCELLED"),
                    created(new[2], (b, 9)),  # short: b has 10 - 1 - 2 - 3 + 2 = 6 then
                ],
            )

        reads = [s for s in statements if s[0].startswith("SELECT")]
        writes = [s for s in statements if s[0].startswith("WITH")]
        assert len(reads) == 3, "reservations, products, checks"
        assert writes == [("WITH stock_saved AS", 1)]
        assert await buckets(sessions, a) == (6, 3, 1)
        assert await buckets(sessions, b) == (6, 3, 1)
        assert await statuses(sessions, to_confirm) == {a: (1, "sold"), b: (1, "sold")}
        assert await statuses(sessions, to_cancel) == {b: (2, "released")}
        assert await statuses(sessions, new[1]) == {a: (1, "reserved"), b: (3, "reserved")}
        assert await statuses(sessions, new[2]) == {}
        outcomes = [[e.event_type for e in await emitted(sessions, o)] for o in new]
        assert outcomes == [["StockReserved"], ["StockReserved"], ["StockReservationFailed"]]

    @pytest.mark.parametrize("prefetch", [True, False])
    async def test_an_order_created_and_settled_in_one_transaction(
        self, sessions: Sessions, prefetch: bool
    ) -> None:
        """What a handler reserved, the next one finds held: sold, released, not reserved
        twice (a second OrderCreated of the order, another event id, reads it written)."""
        sku, sold, released = new_sku(), uuid.uuid4(), uuid.uuid4()
        await stock(sessions, sku, 10)

        async with sessions.begin() as session:
            await apply_together(
                session,
                [
                    created(sold, (sku, 2)),
                    created(released, (sku, 3)),
                    created(sold, (sku, 2)),
                    order_v1.OrderConfirmed(order_id=sold),
                    order_v1.OrderCancelled(order_id=released, reason="CUSTOMER_CANCELLED"),
                    created(released, (sku, 3)),
                ],
                prefetch=prefetch,
            )

        assert await buckets(sessions, sku) == (8, 0, 2)
        assert await statuses(sessions, sold) == {sku: (2, "sold")}
        assert await statuses(sessions, released) == {sku: (3, "released")}
        assert [e.event_type for e in await emitted(sessions, sold)] == [
            "StockReserved",
            "StockSold",
        ]
        assert [e.event_type for e in await emitted(sessions, released)] == [
            "StockReserved",
            "StockReleased",
        ]

    async def test_a_transaction_that_rolls_back_writes_nothing(self, sessions: Sessions) -> None:
        sku, order_id = new_sku(), uuid.uuid4()
        await stock(sessions, sku, 10)

        with pytest.raises(RuntimeError):
            async with sessions.begin() as session:
                await apply_together(session, [created(order_id, (sku, 4))])
                raise RuntimeError("a later event of the fetch fails")
        await create(sessions, order_id, (sku, 4))

        assert await buckets(sessions, sku) == (6, 4, 0)
        assert [e.event_type for e in await emitted(sessions, order_id)] == ["StockReserved"]
