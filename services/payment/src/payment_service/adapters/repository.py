"""Load and save accounts and payments; every function works in the caller's session."""

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from payment_service.adapters.orm import accounts, payments
from payment_service.domain.model import Account, AccountSummary, Payment, PaymentKind


async def get_account(
    session: AsyncSession, customer_id: str, *, for_update: bool = False
) -> Account | None:
    """The customer's account, or None; `for_update` locks its row until the transaction ends."""
    query = sa.select(accounts.c.customer_id, accounts.c.balance_cents).where(
        accounts.c.customer_id == customer_id
    )
    if for_update:
        query = query.with_for_update()
    row = (await session.execute(query)).one_or_none()
    return None if row is None else Account(row.customer_id, row.balance_cents)


async def put_account(session: AsyncSession, account: Account) -> None:
    """Create the account or replace its balance."""
    statement = insert(accounts).values(
        customer_id=account.customer_id, balance_cents=account.balance_cents
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[accounts.c.customer_id],
            set_={"balance_cents": statement.excluded.balance_cents, "updated_at": sa.func.now()},
        )
    )


async def save_balance(session: AsyncSession, account: Account) -> None:
    """Write the balance of an account loaded (and locked) in this transaction."""
    await session.execute(
        sa.update(accounts)
        .where(accounts.c.customer_id == account.customer_id)
        .values(balance_cents=account.balance_cents, updated_at=sa.func.now())
    )


async def add_payment(session: AsyncSession, payment: Payment) -> None:
    """Insert a charge or refund; a second one of a kind for an order violates the unique key."""
    await session.execute(
        sa.insert(payments).values(
            payment_id=payment.payment_id,
            order_id=payment.order_id,
            customer_id=payment.customer_id,
            kind=payment.kind.value,
            amount_cents=payment.amount_cents,
            created_at=payment.created_at,
        )
    )


async def payments_for_order(
    session: AsyncSession, order_id: uuid.UUID, *, for_update: bool = False
) -> list[Payment]:
    """The order's charges and refunds, oldest first; `for_update` locks their rows."""
    query = (
        sa.select(payments)
        .where(payments.c.order_id == order_id)
        # A charge and its refund never share a timestamp in practice; kind breaks a tie.
        .order_by(payments.c.created_at, payments.c.kind)
    )
    if for_update:
        query = query.with_for_update()
    rows = (await session.execute(query)).all()
    return [
        Payment(
            payment_id=row.payment_id,
            order_id=row.order_id,
            customer_id=row.customer_id,
            kind=PaymentKind(row.kind),
            amount_cents=row.amount_cents,
            created_at=row.created_at,
        )
        for row in rows
    ]


async def get_summary(session: AsyncSession, customer_id: str) -> AccountSummary | None:
    """The account with its lifetime charged and refunded totals, or None."""
    account = await get_account(session, customer_id)
    if account is None:
        return None
    rows = await session.execute(
        sa.select(payments.c.kind, sa.func.sum(payments.c.amount_cents))
        .where(payments.c.customer_id == customer_id)
        .group_by(payments.c.kind)
    )
    totals: dict[str, int] = {kind: int(total) for kind, total in rows}
    return AccountSummary(
        customer_id=account.customer_id,
        balance_cents=account.balance_cents,
        charged_cents=totals.get(PaymentKind.CHARGE.value, 0),
        refunded_cents=totals.get(PaymentKind.REFUND.value, 0),
    )
