"""Load and save accounts and payments; every function works in the caller's session.

The statements that every saga runs are built once, here, with bound parameters:
building a statement and its cache key on each call cost more than its SQL.

A consumer's transaction applies a fetch's events, and a statement each was a round
trip each, most of what a statement costs here. So before its handlers run, `hold`
locks the accounts of all its charges with one statement and reads their orders'
checks with one more; a transaction holds the accounts it locked, so a handler that
asks for one gets the same object, with the balance the handlers before it left. The
payments it adds are written when it commits (or before a statement that reads them),
all with one statement sent once.
"""

import uuid
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import LateralFromClause

from chassis.db import TransactionLocal
from payment_service.adapters.orm import accounts, cancelled_orders, payments
from payment_service.domain.model import Account, AccountSummary, Payment, PaymentKind

# The trailing _ keeps a parameter apart from the column of that name.
_CUSTOMER_ID: sa.BindParameter[str] = sa.bindparam("customer_id_")
_TEXTS = postgresql.ARRAY(sa.Text)
_ORDER_ID: sa.BindParameter[uuid.UUID] = sa.bindparam("order_id_")
_GET_ACCOUNT = sa.select(
    accounts.c.customer_id, accounts.c.balance_cents, accounts.c.deposited_cents
).where(accounts.c.customer_id == _CUSTOMER_ID)
_LOCK_ACCOUNT = _GET_ACCOUNT.with_for_update()
# Locked in customer order, so that two transactions that charge the same customers
# take their locks in the same order and never wait on each other in a cycle.
_LOCK_ACCOUNTS = (
    sa.select(accounts.c.customer_id, accounts.c.balance_cents, accounts.c.deposited_cents)
    .where(accounts.c.customer_id == sa.any_(sa.bindparam("customer_ids", type_=_TEXTS)))
    .order_by(accounts.c.customer_id)
    .with_for_update()
)
_SAVE_ACCOUNT = (
    sa.update(accounts)
    .where(accounts.c.customer_id == _CUSTOMER_ID)
    .values(updated_at=sa.func.now())
)
# A charge or refund and the account's new balance in one statement: the balance's
# update runs as a data-modifying WITH ahead of the payment's insert. Every value is a
# named parameter, so none of them is taken for a column of the other table.
_PAYMENT_COLUMNS = ("payment_id", "order_id", "kind", "amount_cents", "created_at")
_ADD_PAYMENT = (
    sa.insert(payments)
    .values(
        {
            **{name: sa.bindparam(name, type_=payments.c[name].type) for name in _PAYMENT_COLUMNS},
            "customer_id": _CUSTOMER_ID,
        }
    )
    .add_cte(_SAVE_ACCOUNT.values(balance_cents=sa.bindparam("balance_cents_")).cte("saved"))
)
# Both of a charge's checks, for every order of a transaction, in one statement: the
# orders go as one array, so one prepared statement serves any number.
_CHECKED = (
    sa.func.unnest(sa.bindparam("order_ids", type_=postgresql.ARRAY(postgresql.UUID)))
    .table_valued(sa.column("order_id", postgresql.UUID(as_uuid=True)))
    .render_derived(name="checked")
)


def _found(name: str, *where: sa.ColumnElement[bool]) -> LateralFromClause:
    """Whether a row matches `where` for each checked order, looked up in its index.

    As a LATERAL with LIMIT 1, not an EXISTS: PostgreSQL may run an EXISTS for many
    orders as one hash of the whole table, and a prepared statement keeps the plan it
    chose while the table was small, so every check scanned every payment.
    """
    found = sa.select(sa.true().label("found")).where(*where)
    return found.limit(sa.literal_column("1")).lateral(name)


_CANCELLED = _found("cancelled", cancelled_orders.c.order_id == _CHECKED.c.order_id)
_CHARGED = _found(
    "charged",
    payments.c.order_id == _CHECKED.c.order_id,
    payments.c.kind == PaymentKind.CHARGE.value,
)
_CHECKS = sa.select(
    _CHECKED.c.order_id,
    _CANCELLED.c.found.is_not(None).label("cancelled"),
    _CHARGED.c.found.is_not(None).label("charged"),
).select_from(_CHECKED.outerjoin(_CANCELLED, sa.true()).outerjoin(_CHARGED, sa.true()))
_PAYMENTS = (
    sa.select(payments)
    .where(payments.c.order_id == _ORDER_ID)
    # A charge and its refund never share a timestamp in practice; kind breaks a tie.
    .order_by(payments.c.created_at, payments.c.kind)
)
_LOCK_PAYMENTS = _PAYMENTS.with_for_update()


async def hold(
    session: AsyncSession, customer_ids: Iterable[str], order_ids: Sequence[uuid.UUID]
) -> None:
    """Lock the accounts of a transaction's charges, then read their orders' checks.

    Two statements for all: the accounts of `customer_ids` in customer order (an
    unknown customer has none), then the checks of `order_ids`, after the locks, so
    that they see what a transaction that held an account committed. The handlers then
    find them held, where each charge ran two statements of its own.
    """
    held = _HELD.get(session).accounts
    missing = sorted(set(customer_ids) - held.keys())
    if missing:
        for row in await session.execute(_LOCK_ACCOUNTS, {"customer_ids": missing}):
            held[row.customer_id] = _account(row)
    await _check(session, order_ids)


async def get_account(
    session: AsyncSession, customer_id: str, *, for_update: bool = False
) -> Account | None:
    """The customer's account, or None; `for_update` locks its row until the transaction
    ends. An account the transaction locked before is returned as it holds it, not read
    again: its new balance is written only with its payments."""
    held = _HELD.get(session).accounts
    if customer_id in held:
        return held[customer_id]
    query = _LOCK_ACCOUNT if for_update else _GET_ACCOUNT
    row = (await session.execute(query, {"customer_id_": customer_id})).one_or_none()
    if row is None:
        return None
    account = _account(row)
    if for_update:
        held[customer_id] = account
    return account


def _account(row: sa.Row[str, int, int]) -> Account:
    return Account(row.customer_id, row.balance_cents, row.deposited_cents)


async def lock_or_add_account(session: AsyncSession, customer_id: str) -> Account:
    """The customer's account, locked; a missing one is first inserted empty (all zero).

    Inserting before locking makes two concurrent creations of one account serialize on
    its row instead of one of them failing on the primary key.
    """
    await session.execute(
        insert(accounts)
        .values(customer_id=customer_id, balance_cents=0, deposited_cents=0)
        .on_conflict_do_nothing()
    )
    account = await get_account(session, customer_id, for_update=True)
    assert account is not None, "the account was inserted in this transaction"
    return account


async def save_account(session: AsyncSession, account: Account) -> None:
    """Write the balance and deposits of an account loaded (and locked) in this transaction."""
    await session.execute(
        _SAVE_ACCOUNT,
        {
            "customer_id_": account.customer_id,
            "balance_cents": account.balance_cents,
            "deposited_cents": account.deposited_cents,
        },
    )


def add_payment(session: AsyncSession, payment: Payment, account: Account) -> None:
    """Save a charge or refund and the new balance of its account, locked in this
    transaction: written at its commit, with the other payments it added (see above).

    A second payment of a kind for an order violates the unique key, and fails the commit.
    """
    assert payment.customer_id == account.customer_id, "a payment changes its customer's account"
    _HELD.get(session).payments.append(
        {
            "payment_id": payment.payment_id,
            "order_id": payment.order_id,
            "kind": payment.kind.value,
            "amount_cents": payment.amount_cents,
            "created_at": payment.created_at,
            "customer_id_": account.customer_id,
            "balance_cents_": account.balance_cents,
        }
    )


async def add_cancelled_order(session: AsyncSession, order_id: uuid.UUID) -> None:
    """Remember that the order was cancelled (again is fine)."""
    _HELD.get(session).checks.pop(order_id, None)  # a check read before this is out of date
    await session.execute(
        insert(cancelled_orders).values(order_id=order_id).on_conflict_do_nothing()
    )


async def cancelled_and_charged(session: AsyncSession, order_id: uuid.UUID) -> tuple[bool, bool]:
    """Whether payment heard that the order was cancelled, and whether it charged it.

    A check that `hold` read answers once: what the transaction does after it is its own.
    """
    checks = _HELD.get(session).checks
    if order_id not in checks:
        await _check(session, [order_id])
    return checks.pop(order_id)


async def _check(session: AsyncSession, order_ids: Sequence[uuid.UUID]) -> None:
    if order_ids:
        await _write(session, set(order_ids))  # the checks read payments: unwritten ones too
        checks = _HELD.get(session).checks
        for row in await session.execute(_CHECKS, {"order_ids": list(order_ids)}):
            checks[row.order_id] = (row.cancelled, row.charged)


async def payments_for_order(
    session: AsyncSession, order_id: uuid.UUID, *, for_update: bool = False
) -> list[Payment]:
    """The order's charges and refunds, oldest first; `for_update` locks their rows."""
    await _write(session, {order_id})
    query = _LOCK_PAYMENTS if for_update else _PAYMENTS
    rows = (await session.execute(query, {"order_id_": order_id})).all()
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


def _summaries(accounts_query: sa.Select[tuple[str]]) -> sa.Select[tuple[object, ...]]:
    """Account rows with their charged and refunded totals, for the accounts selected.

    One statement (one snapshot): the totals always match the balances they sit next to,
    whatever charges commit meanwhile, and a page costs one grouped query.
    """
    chosen = accounts_query.subquery("chosen")
    charged = sa.func.coalesce(
        sa.func.sum(payments.c.amount_cents).filter(payments.c.kind == PaymentKind.CHARGE.value),
        0,
    )
    refunded = sa.func.coalesce(
        sa.func.sum(payments.c.amount_cents).filter(payments.c.kind == PaymentKind.REFUND.value),
        0,
    )
    return (
        sa.select(
            accounts.c.customer_id,
            accounts.c.balance_cents,
            accounts.c.deposited_cents,
            charged.label("charged_cents"),
            refunded.label("refunded_cents"),
        )
        .join(chosen, chosen.c.customer_id == accounts.c.customer_id)
        .outerjoin(payments, payments.c.customer_id == accounts.c.customer_id)
        .group_by(accounts.c.customer_id)
        .order_by(accounts.c.customer_id.collate("C"))
    )


def _summary(row: sa.Row[tuple[object, ...]]) -> AccountSummary:
    return AccountSummary(
        customer_id=row.customer_id,
        balance_cents=row.balance_cents,
        deposited_cents=row.deposited_cents,
        charged_cents=int(row.charged_cents),
        refunded_cents=int(row.refunded_cents),
    )


async def get_summary(session: AsyncSession, customer_id: str) -> AccountSummary | None:
    """The account with its lifetime deposited, charged and refunded totals, or None."""
    await _write(session)
    chosen = sa.select(accounts.c.customer_id).where(accounts.c.customer_id == customer_id)
    row = (await session.execute(_summaries(chosen))).one_or_none()
    return None if row is None else _summary(row)


async def list_summaries(
    session: AsyncSession, limit: int, after: str | None = None
) -> list[AccountSummary]:
    """Up to `limit` accounts with a customer id after `after`, in byte order, with totals.

    Customer ids compare with the "C" collation, so the order does not depend on the
    database's locale and a client can page through with `after` = the last id it saw.
    """
    await _write(session)
    customer_id = accounts.c.customer_id.collate("C")
    chosen = sa.select(accounts.c.customer_id).order_by(customer_id).limit(limit)
    if after is not None:
        chosen = chosen.where(customer_id > after)
    return [_summary(row) for row in await session.execute(_summaries(chosen))]


@dataclass
class _Held:
    """The accounts a transaction locked, the payments it added but did not write, and
    the checks `hold` read that no handler asked for yet."""

    accounts: dict[str, Account] = field(default_factory=dict)
    payments: list[dict[str, object]] = field(default_factory=list)
    checks: dict[uuid.UUID, tuple[bool, bool]] = field(default_factory=dict)


async def _write(session: AsyncSession, order_ids: Container[uuid.UUID] | None = None) -> None:
    """Write the payments added and not written yet, before a statement that reads them:
    if any is of `order_ids`, when the statement reads only those orders' payments."""
    held = _HELD.find(session)
    if held is not None and any(
        order_ids is None or payment["order_id"] in order_ids for payment in held.payments
    ):
        payments, held.payments = held.payments, []
        await session.execute(_ADD_PAYMENT, payments)


def _write_at_commit(session: Session, held: _Held) -> None:
    if held.payments:
        session.execute(_ADD_PAYMENT, held.payments)


_HELD = TransactionLocal("payment_service.held", _Held, _write_at_commit)
