import asyncio
import uuid

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.consumer import Delivery
from chassis.outbox import Outbox, new_envelope
from payment_service.adapters import orm, repository
from payment_service.main import HANDLERS
from payment_service.service_layer.handlers import (
    get_account,
    list_accounts,
    lock_charged_accounts,
    on_order_cancelled,
    on_order_created,
    set_balance,
)
from shared_contracts import Topic
from shared_contracts.order.v1 import CancellationReason, OrderCancelled
from shared_contracts.order.v2 import Money, OrderCreated, OrderLine

pytestmark = pytest.mark.integration


def order_created(customer_id: str, total_cents: int, currency: str = "EUR") -> OrderCreated:
    price = Money(amount_cents=total_cents, currency=currency)
    return OrderCreated(
        order_id=uuid.uuid4(),
        customer_id=customer_id,
        lines=[OrderLine(sku="sku-1", quantity=1, unit_price=price)],
        total=price,
    )


def cancelled(order_id: uuid.UUID) -> OrderCancelled:
    return OrderCancelled(order_id=order_id, reason=CancellationReason.OUT_OF_STOCK)


@pytest.fixture
async def customer(sessions: async_sessionmaker[AsyncSession]) -> str:
    """A fresh customer with 1000 cents."""
    customer_id = f"cust-{uuid.uuid4().hex[:12]}"
    async with sessions.begin() as session:
        await set_balance(session, customer_id, 1000)
    return customer_id


async def balance(sessions: async_sessionmaker[AsyncSession], customer_id: str) -> int | None:
    async with sessions.begin() as session:
        account = await repository.get_account(session, customer_id)
    return None if account is None else account.balance_cents


async def payments(
    sessions: async_sessionmaker[AsyncSession], order_id: uuid.UUID
) -> list[tuple[str, int]]:
    async with sessions.begin() as session:
        rows = await repository.payments_for_order(session, order_id)
    return [(p.kind.value, p.amount_cents) for p in rows]


async def test_an_order_is_charged_and_payment_succeeded_is_emitted(
    sessions, deliver, outbox_events, customer
):
    event = order_created(customer, 700)

    cause = await deliver(on_order_created, event)

    assert await balance(sessions, customer) == 300
    assert await payments(sessions, event.order_id) == [("charge", 700)]
    [(topic, key, envelope)] = await outbox_events(str(event.order_id))
    assert (topic, key) == (Topic.PAYMENT_EVENTS, str(event.order_id))
    assert envelope.event_type == "PaymentSucceeded"
    assert envelope.causation_id == cause.event_id
    assert envelope.producer == "payment"
    assert envelope.aggregate_id == str(event.order_id)
    assert envelope.payload == {
        "order_id": str(event.order_id),
        "customer_id": customer,
        "amount_cents": 700,
    }


async def test_a_charge_may_take_the_whole_balance(sessions, deliver, outbox_events, customer):
    event = order_created(customer, 1000)
    await deliver(on_order_created, event)
    assert await balance(sessions, customer) == 0
    [(_, _, envelope)] = await outbox_events(str(event.order_id))
    assert envelope.event_type == "PaymentSucceeded"


async def test_insufficient_funds_charge_nothing_and_emit_payment_failed(
    sessions, deliver, outbox_events, customer
):
    event = order_created(customer, 1001)

    cause = await deliver(on_order_created, event)

    assert await balance(sessions, customer) == 1000
    assert await payments(sessions, event.order_id) == []
    [(topic, _, envelope)] = await outbox_events(str(event.order_id))
    assert topic == Topic.PAYMENT_EVENTS
    assert envelope.event_type == "PaymentFailed"
    assert envelope.causation_id == cause.event_id
    assert envelope.payload == {
        "order_id": str(event.order_id),
        "customer_id": customer,
        "reason": "INSUFFICIENT_FUNDS",
    }


async def test_an_unknown_account_emits_payment_failed(sessions, deliver, outbox_events):
    event = order_created("nobody-" + uuid.uuid4().hex[:8], 10)

    await deliver(on_order_created, event)

    assert await payments(sessions, event.order_id) == []
    [(_, _, envelope)] = await outbox_events(str(event.order_id))
    assert envelope.event_type == "PaymentFailed"
    assert envelope.payload["reason"] == "UNKNOWN_ACCOUNT"
    assert await balance(sessions, event.customer_id) is None


async def test_a_total_in_another_currency_is_declined(sessions, deliver, outbox_events, customer):
    event = order_created(customer, 10, currency="USD")

    await deliver(on_order_created, event)

    assert await balance(sessions, customer) == 1000
    [(_, _, envelope)] = await outbox_events(str(event.order_id))
    assert (envelope.event_type, envelope.payload["reason"]) == (
        "PaymentFailed",
        "UNSUPPORTED_CURRENCY",
    )


async def test_order_created_twice_charges_once(sessions, deliver, outbox_events, customer):
    event = order_created(customer, 300)

    await deliver(on_order_created, event)
    await deliver(on_order_created, event)  # a new event id: the inbox would not stop it

    assert await balance(sessions, customer) == 700
    assert await payments(sessions, event.order_id) == [("charge", 300)]
    assert [e.event_type for _, _, e in await outbox_events(str(event.order_id))] == [
        "PaymentSucceeded"
    ]


async def test_concurrent_order_created_for_one_order_charges_once(
    sessions, deliver, outbox_events, customer
):
    event = order_created(customer, 300)

    await asyncio.gather(deliver(on_order_created, event), deliver(on_order_created, event))

    assert await balance(sessions, customer) == 700
    assert await payments(sessions, event.order_id) == [("charge", 300)]
    assert len(await outbox_events(str(event.order_id))) == 1


async def test_concurrent_charges_never_overdraw_the_account(
    sessions, deliver, outbox_events, customer
):
    first, second = order_created(customer, 600), order_created(customer, 600)

    await asyncio.gather(deliver(on_order_created, first), deliver(on_order_created, second))

    assert await balance(sessions, customer) == 400
    outcomes = []
    for order in (first, second):
        outcomes += [
            envelope.event_type for _, _, envelope in await outbox_events(str(order.order_id))
        ]
    outcomes.sort()
    assert outcomes == ["PaymentFailed", "PaymentSucceeded"]


async def test_a_cancelled_order_is_refunded_once(sessions, deliver, outbox_events, customer):
    event = order_created(customer, 700)
    await deliver(on_order_created, event)

    cause = await deliver(on_order_cancelled, cancelled(event.order_id))
    again = await deliver(on_order_cancelled, cancelled(event.order_id))

    assert await balance(sessions, customer) == 1000
    assert await payments(sessions, event.order_id) == [("charge", 700), ("refund", 700)]
    events = await outbox_events(str(event.order_id))
    # The repeat is answered too: the order service sends its decision again when an
    # answer was lost, so the second answer repeats the first.
    assert [e.event_type for _, _, e in events] == [
        "PaymentSucceeded",
        "PaymentRefunded",
        "PaymentRefunded",
    ]
    topic, key, refunded = events[1]
    assert (topic, key) == (Topic.PAYMENT_EVENTS, str(event.order_id))
    assert (refunded.causation_id, events[2][2].causation_id) == (cause.event_id, again.event_id)
    assert (
        refunded.payload
        == events[2][2].payload
        == {
            "order_id": str(event.order_id),
            "customer_id": customer,
            "amount_cents": 700,
        }
    )


async def test_a_refund_goes_to_the_current_balance(sessions, deliver, customer):
    event = order_created(customer, 700)
    await deliver(on_order_created, event)
    async with sessions.begin() as session:
        await set_balance(session, customer, 50)

    await deliver(on_order_cancelled, cancelled(event.order_id))

    assert await balance(sessions, customer) == 750


async def test_an_order_never_charged_is_voided_and_never_charged_later(
    sessions, deliver, outbox_events, customer
):
    event = order_created(customer, 300)

    await deliver(on_order_cancelled, cancelled(event.order_id))
    # OrderCreated arriving after the cancellation: a replay from a DLQ, say.
    await deliver(on_order_created, event)

    assert await balance(sessions, customer) == 1000
    assert await payments(sessions, event.order_id) == []
    [(_, _, voided)] = await outbox_events(str(event.order_id))
    assert (voided.event_type, voided.payload) == (
        "PaymentVoided",
        {"order_id": str(event.order_id)},
    )


async def test_cancelling_a_declined_order_refunds_nothing(
    sessions, deliver, outbox_events, customer
):
    event = order_created(customer, 5000)
    await deliver(on_order_created, event)

    await deliver(on_order_cancelled, cancelled(event.order_id))

    assert await balance(sessions, customer) == 1000
    assert await payments(sessions, event.order_id) == []
    assert [e.event_type for _, _, e in await outbox_events(str(event.order_id))] == [
        "PaymentFailed",
        "PaymentVoided",
    ]


async def test_the_database_refuses_a_second_charge_for_an_order(sessions, deliver, customer):
    event = order_created(customer, 100)
    await deliver(on_order_created, event)

    with pytest.raises(IntegrityError, match="uq_payments_order_id_kind"):
        async with sessions.begin() as session:
            await session.execute(
                sa.insert(orm.payments).values(
                    payment_id=uuid.uuid4(),
                    order_id=event.order_id,
                    customer_id=customer,
                    kind="charge",
                    amount_cents=100,
                )
            )


async def test_the_database_refuses_a_negative_balance(sessions, customer):
    with pytest.raises(IntegrityError, match="ck_accounts_balance_not_negative"):
        async with sessions.begin() as session:
            await session.execute(
                sa.update(orm.accounts)
                .where(orm.accounts.c.customer_id == customer)
                .values(balance_cents=-1)
            )


async def ledger(sessions: async_sessionmaker[AsyncSession], customer_id: str) -> tuple[int, ...]:
    """`(balance, deposited, charged, refunded)` of the customer, as the API reports them."""
    async with sessions.begin() as session:
        summary = await get_account(session, customer_id)
    assert summary is not None
    return (
        summary.balance_cents,
        summary.deposited_cents,
        summary.charged_cents,
        summary.refunded_cents,
    )


async def put(sessions: async_sessionmaker[AsyncSession], customer_id: str, cents: int) -> None:
    async with sessions.begin() as session:
        await set_balance(session, customer_id, cents)


async def test_deposits_count_every_put_and_charges_and_refunds_leave_them_alone(
    sessions, deliver, customer
):
    assert await ledger(sessions, customer) == (1000, 1000, 0, 0)
    await put(sessions, customer, 1500)
    assert await ledger(sessions, customer) == (1500, 1500, 0, 0)

    first, second = order_created(customer, 700), order_created(customer, 300)
    await deliver(on_order_created, first)
    await deliver(on_order_created, second)
    await deliver(on_order_created, order_created(customer, 10_000))  # declined
    assert await ledger(sessions, customer) == (500, 1500, 1000, 0)

    await put(sessions, customer, 200)  # 300 taken out
    assert await ledger(sessions, customer) == (200, 1200, 1000, 0)
    await deliver(on_order_cancelled, cancelled(first.order_id))
    assert await ledger(sessions, customer) == (900, 1200, 1000, 700)
    await put(sessions, customer, 0)
    balance_, deposited, charged, refunded = await ledger(sessions, customer)
    assert (balance_, deposited) == (0, 300)
    assert balance_ == deposited - charged + refunded


async def test_concurrent_puts_charges_and_refunds_keep_the_books_balanced(
    sessions, deliver, customer
):
    orders = [order_created(customer, 100) for _ in range(6)]
    await asyncio.gather(
        *(deliver(on_order_created, o) for o in orders),
        *(put(sessions, customer, cents) for cents in (400, 50, 800)),
    )
    await asyncio.gather(
        *(deliver(on_order_cancelled, cancelled(o.order_id)) for o in orders[::2]),
        put(sessions, customer, 120),
    )
    balance_, deposited, charged, refunded = await ledger(sessions, customer)
    assert balance_ == deposited - charged + refunded


async def test_concurrent_puts_of_a_new_account_all_succeed_and_deposit_the_last(sessions):
    customer_id = f"cust-{uuid.uuid4().hex[:12]}"
    await asyncio.gather(*(put(sessions, customer_id, cents) for cents in range(100, 600, 100)))
    balance_, deposited, charged, refunded = await ledger(sessions, customer_id)
    assert (deposited, charged, refunded) == (balance_, 0, 0)


async def test_a_page_of_accounts_is_ordered_and_says_whether_more_follow(sessions):
    prefix = f"page-{uuid.uuid4().hex[:8]}"
    for n in range(3):
        await put(sessions, f"{prefix}-{n}", 10 * n)
    async with sessions.begin() as session:
        first, cursor = await list_accounts(session, 2, after=prefix)
        rest, _ = await list_accounts(session, 2, after=cursor)
    assert [a.customer_id for a in first] == [f"{prefix}-0", f"{prefix}-1"]
    assert cursor == f"{prefix}-1"
    assert rest[0].customer_id == f"{prefix}-2"
    assert rest[0].deposited_cents == 20


async def apply_together(
    session: AsyncSession, events: list[BaseModel], *, prefetch: bool = True
) -> None:
    """Apply `events` in the session's transaction, as the consumer applies a fetch: its
    prefetch first (unless not), then each event's handler."""
    if prefetch:
        await lock_charged_accounts(session, events)
    for payload in events:
        envelope = new_envelope("order", str(getattr(payload, "order_id", "")), payload)
        await HANDLERS[type(payload)](Delivery(session, envelope, Outbox("payment")), payload)


@pytest.mark.parametrize(
    ("prefetch", "locks", "checks"),
    [(True, 1, 1), (False, 2, 4)],
    ids=["with the prefetch", "without"],
)
async def test_charges_in_one_transaction_run_a_fixed_number_of_statements(
    sessions, customer, statements, prefetch, locks, checks
):
    """The prefetch locks every customer's account with one statement and checks every
    order with one more (without it: an account lock per customer, a check per
    charge); the payments and the balances go as one statement, sent once."""
    orders = [order_created(customer, 100) for _ in range(3)]
    other = f"cust-{uuid.uuid4().hex[:12]}"
    await put(sessions, other, 500)
    statements.clear()

    async with sessions.begin() as session:
        await apply_together(
            session, [orders[0], order_created(other, 200), *orders[1:]], prefetch=prefetch
        )

    assert [s for s in statements if s[0].startswith("WITH saved")] == [("WITH saved AS", 4)]
    assert sum(s[0].startswith("SELECT accounts.") for s in statements) == locks
    assert sum(s[0].startswith("SELECT checked.") for s in statements) == checks
    assert await balance(sessions, customer) == 700
    assert await balance(sessions, other) == 300
    for event in orders:
        assert await payments(sessions, event.order_id) == [("charge", 100)]


@pytest.mark.parametrize("prefetch", [True, False], ids=["with the prefetch", "without"])
async def test_a_charge_is_seen_by_the_events_after_it_in_its_transaction(
    sessions, customer, outbox_events, prefetch
):
    """A repeat charges nothing; a cancellation refunds what was charged before it. The
    checks the prefetch read before the first charge do not answer for the repeat."""
    charged_twice, refunded = order_created(customer, 100), order_created(customer, 300)

    async with sessions.begin() as session:
        await apply_together(
            session,
            [charged_twice, refunded, charged_twice, cancelled(refunded.order_id)],
            prefetch=prefetch,
        )

    assert await balance(sessions, customer) == 900
    assert await payments(sessions, charged_twice.order_id) == [("charge", 100)]
    assert await payments(sessions, refunded.order_id) == [("charge", 300), ("refund", 300)]
    answers = [e.event_type for _, _, e in await outbox_events(str(refunded.order_id))]
    assert answers == ["PaymentSucceeded", "PaymentRefunded"]


async def test_an_order_cancelled_before_its_charge_in_one_transaction_is_never_charged(
    sessions, customer, outbox_events
):
    """The prefetch checked the order before the transaction's handlers ran; the
    cancellation applied ahead of the charge makes that check out of date."""
    event = order_created(customer, 100)

    async with sessions.begin() as session:
        await apply_together(session, [cancelled(event.order_id), event])

    assert await balance(sessions, customer) == 1000
    assert await payments(sessions, event.order_id) == []
    answers = [e.event_type for _, _, e in await outbox_events(str(event.order_id))]
    assert answers == ["PaymentVoided"]


async def test_a_transaction_that_rolls_back_charges_nothing(sessions, customer):
    event = order_created(customer, 400)

    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            await apply_together(session, [event])
            raise RuntimeError("a later event of the fetch fails")

    assert await balance(sessions, customer) == 1000
    assert await payments(sessions, event.order_id) == []
