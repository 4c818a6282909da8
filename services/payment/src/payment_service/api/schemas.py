"""HTTP request and response bodies of the payment API."""

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from chassis.api import JSON_SCHEMA_INTEGER

MAX_BALANCE_CENTS = 10**15


class AccountIn(BaseModel):
    """The body of `PUT /v1/accounts/{customer_id}`."""

    balance_cents: Annotated[
        int, Field(strict=True, ge=0, le=MAX_BALANCE_CENTS), JSON_SCHEMA_INTEGER
    ] = Field(
        description="New balance, in cents (at most 10^15, so sums stay inside a bigint).",
    )


class AccountOut(BaseModel):
    """A customer's account, with lifetime totals for invariant checks."""

    customer_id: str = Field(description="The customer.")
    balance_cents: int = Field(description="Current balance, in cents.")
    deposited_cents: int = Field(
        description="Net money ever put in by PUT, in cents; "
        "balance = deposited - charged + refunded."
    )
    charged_cents: int = Field(description="Sum of every charge ever made, in cents.")
    refunded_cents: int = Field(description="Sum of every refund ever made, in cents.")


class AccountPage(BaseModel):
    """One page of the account ledger, in customer id order."""

    accounts: list[AccountOut] = Field(description="Accounts, in customer id (byte) order.")
    next: str | None = Field(
        description="The last customer id of this page when more follow (pass it as `after`), "
        "else null."
    )


class PaymentOut(BaseModel):
    """One charge or refund for an order."""

    payment_id: uuid.UUID = Field(description="The payment.")
    order_id: uuid.UUID = Field(description="The order it is for.")
    customer_id: str = Field(description="The customer charged or refunded.")
    kind: Literal["charge", "refund"] = Field(description="Charge or refund.")
    amount_cents: int = Field(description="Amount, in cents.")
    created_at: datetime = Field(description="When it was made (UTC).")
