"""Use cases: charge on OrderCreated, refund on OrderCancelled, and the account commands.

Each reads top-down: load (locking what the rule needs) -> the domain decides -> save
-> write the resulting event to the outbox, all in the caller's transaction. The event
handlers get that transaction and the outbox from the chassis `Delivery`.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.consumer import Delivery
from payment_service.adapters import repository
from payment_service.domain import model
from shared_contracts import Topic
from shared_contracts.order.v1 import OrderCancelled
from shared_contracts.order.v2 import OrderCreated
from shared_contracts.payment.v1 import (
    PaymentFailed,
    PaymentRefunded,
    PaymentSucceeded,
    PaymentVoided,
)


async def lock_charged_accounts(session: AsyncSession, events: Sequence[BaseModel]) -> None:
    """The consumer's prefetch: lock the accounts a transaction's charges change, in
    customer order, and check their orders: two statements for all, where each charge
    ran two of its own."""
    created = [e for e in events if isinstance(e, OrderCreated)]
    await repository.hold(session, (e.customer_id for e in created), [e.order_id for e in created])


async def on_order_created(delivery: Delivery, event: OrderCreated) -> None:
    """Charge the order's total to the customer, once, and say whether it worked.

    Payment reads OrderCreated v2 (money with its currency); the order service publishes
    v1 beside it for consumers that have not moved yet.
    """
    session = delivery.session
    # Lock the account first (the prefetch has, for the whole transaction): concurrent
    # charges of one customer then run one at a time, so each sees the balance and the
    # charges the previous one committed.
    account = await repository.get_account(session, event.customer_id, for_update=True)
    cancelled, charged = await repository.cancelled_and_charged(session, event.order_id)
    if cancelled:
        return  # cancelled before it got here (a replay, a lost event): never charge it
    if charged:
        return  # charged before: a second OrderCreated charges nothing
    key = str(event.order_id)
    try:
        model.check_currency(event.total.currency, event.customer_id)
        account = model.known_account(account, event.customer_id)
        charge = account.charge(event.order_id, event.total.amount_cents, at=datetime.now(UTC))
    except model.PaymentDeclined as declined:
        failed = PaymentFailed(
            order_id=event.order_id, customer_id=event.customer_id, reason=declined.reason.value
        )
        await delivery.publish(Topic.PAYMENT_EVENTS, key, failed)
        return
    repository.add_payment(session, charge, account)
    succeeded = PaymentSucceeded(
        order_id=charge.order_id, customer_id=charge.customer_id, amount_cents=charge.amount_cents
    )
    await delivery.publish(Topic.PAYMENT_EVENTS, key, succeeded)


async def on_order_cancelled(delivery: Delivery, event: OrderCancelled) -> None:
    """Refund the order's charge, once; answer PaymentRefunded, or PaymentVoided if none.

    Every OrderCancelled is answered, a repeat too: the order service sends its decision
    again until it hears back, in case an event was lost on the way.
    """
    session = delivery.session
    await repository.add_cancelled_order(session, event.order_id)
    # Locking the order's payment rows makes two refunds of one order run one at a time.
    payments = await repository.payments_for_order(session, event.order_id, for_update=True)
    refund = model.refund_of(payments)
    charge = model.refundable_charge(payments)
    if charge is not None:
        account = await repository.get_account(session, charge.customer_id, for_update=True)
        if account is None:
            # Accounts are never deleted, so this is a broken database: fail loudly (retry, DLQ).
            raise model.AccountMismatch(f"account {charge.customer_id} of a charge is missing")
        refund = account.refund(charge, at=datetime.now(UTC))
        repository.add_payment(session, refund, account)
    answer: PaymentRefunded | PaymentVoided = (
        PaymentVoided(order_id=event.order_id)
        if refund is None
        else PaymentRefunded(
            order_id=refund.order_id,
            customer_id=refund.customer_id,
            amount_cents=refund.amount_cents,
        )
    )
    await delivery.publish(Topic.PAYMENT_EVENTS, str(event.order_id), answer)


async def set_balance(
    session: AsyncSession, customer_id: str, balance_cents: int
) -> model.AccountSummary:
    """Create the customer's account or replace its balance; return the account.

    The change of balance (the whole balance for a new account) counts as deposited.
    """
    account = await repository.lock_or_add_account(session, customer_id)
    account.set_balance(balance_cents)
    await repository.save_account(session, account)
    summary = await repository.get_summary(session, customer_id)
    assert summary is not None, "the account was written in this transaction"
    return summary


async def get_account(session: AsyncSession, customer_id: str) -> model.AccountSummary | None:
    """The customer's account with its deposited, charged and refunded totals, or None."""
    return await repository.get_summary(session, customer_id)


async def list_accounts(
    session: AsyncSession, limit: int, after: str | None = None
) -> tuple[list[model.AccountSummary], str | None]:
    """A page of up to `limit` accounts after customer `after`, in order, and the next cursor.

    The cursor is the page's last customer id when more accounts follow it, else None.
    """
    found = await repository.list_summaries(session, limit + 1, after)
    page = found[:limit]
    return page, (page[-1].customer_id if len(found) > limit else None)


async def get_payments(session: AsyncSession, order_id: uuid.UUID) -> list[model.Payment]:
    """The order's charges and refunds, oldest first."""
    return await repository.payments_for_order(session, order_id)
