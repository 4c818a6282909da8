"""Routes of the payment API: set and read balances, page through accounts, list payments."""

import uuid
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from chassis.api import MALFORMED_BODY, UNAVAILABLE, error
from chassis.runtime import RuntimeDep
from payment_service.api.schemas import AccountIn, AccountOut, AccountPage, PaymentOut
from payment_service.domain import model
from payment_service.service_layer import handlers

router = APIRouter(prefix="/v1", tags=["payments"], responses=UNAVAILABLE)

CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9._-]+$"

CustomerId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=CUSTOMER_ID_PATTERN,
        description="Customer id: 1-64 characters of letters, digits, `.`, `_` and `-`.",
    ),
]


def _account_out(summary: model.AccountSummary) -> AccountOut:
    return AccountOut(
        customer_id=summary.customer_id,
        balance_cents=summary.balance_cents,
        deposited_cents=summary.deposited_cents,
        charged_cents=summary.charged_cents,
        refunded_cents=summary.refunded_cents,
    )


@router.put("/accounts/{customer_id}", responses=MALFORMED_BODY)
async def put_account(customer_id: CustomerId, body: AccountIn, runtime: RuntimeDep) -> AccountOut:
    """Create the customer's account, or replace its balance (integer cents, >= 0)."""
    async with runtime.sessions.begin() as session:
        summary = await handlers.set_balance(session, customer_id, body.balance_cents)
    return _account_out(summary)


@router.get("/accounts")
async def list_accounts(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size, 1-1000.")] = 100,
    after: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            pattern=CUSTOMER_ID_PATTERN,
            description="Return only accounts with a customer id after this one.",
        ),
    ] = None,
) -> AccountPage:
    """Page through every account in customer id (byte) order: the money ledger, read-only.

    Each account carries its balance and lifetime `deposited_cents`, `charged_cents`
    and `refunded_cents`, read in one snapshot, so a checker can verify
    `balance = deposited - charged + refunded`. Pass the returned `next` as `after` to
    get the following page; `next` is null on the last page.
    """
    async with runtime.sessions.begin() as session:
        accounts, next_id = await handlers.list_accounts(session, limit, after)
    return AccountPage(accounts=[_account_out(a) for a in accounts], next=next_id)


@router.get("/accounts/{customer_id}", responses={404: error("Unknown customer")})
async def get_account(customer_id: CustomerId, runtime: RuntimeDep) -> AccountOut:
    """The customer's balance, with the totals ever deposited, charged and refunded."""
    async with runtime.sessions.begin() as session:
        summary = await handlers.get_account(session, customer_id)
    if summary is None:
        raise HTTPException(status_code=404, detail=f"account {customer_id} not found")
    return _account_out(summary)


@router.get("/payments")
async def list_payments(
    order_id: Annotated[uuid.UUID, Query(description="The order whose payments to list.")],
    runtime: RuntimeDep,
) -> list[PaymentOut]:
    """The charges and refunds for an order, oldest first; empty when there are none."""
    async with runtime.sessions.begin() as session:
        payments = await handlers.get_payments(session, order_id)
    return [
        PaymentOut(
            payment_id=p.payment_id,
            order_id=p.order_id,
            customer_id=p.customer_id,
            kind=p.kind.value,
            amount_cents=p.amount_cents,
            created_at=p.created_at,
        )
        for p in payments
    ]
