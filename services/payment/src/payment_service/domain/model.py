"""Accounts and payments, and the rules that decide charges and refunds.

Pure Python: no I/O, no framework. Each function gets what it needs and returns the
decision, so the service layer only loads, asks and saves.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class PaymentKind(StrEnum):
    """What a payment did to the customer's balance."""

    CHARGE = "charge"
    REFUND = "refund"


CURRENCY = "EUR"
"""The currency of every balance: amounts are euro cents."""


class DeclineReason(StrEnum):
    """Why a charge was declined; the text travels in `PaymentFailed.reason`."""

    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    UNSUPPORTED_CURRENCY = "UNSUPPORTED_CURRENCY"


class PaymentError(Exception):
    """Base class of the payment rules' errors."""


class NegativeAmount(PaymentError):
    """A balance or an amount below zero: money is never negative here."""


class PaymentDeclined(PaymentError):
    """The customer cannot be charged; nothing was charged."""

    def __init__(self, reason: DeclineReason, customer_id: str) -> None:
        super().__init__(f"charge for {customer_id} declined: {reason}")
        self.reason = reason
        self.customer_id = customer_id


class AccountMismatch(PaymentError):
    """A refund was asked of an account that does not hold the charge."""


@dataclass(frozen=True)
class Payment:
    """One movement of money for one order: a charge or its refund."""

    order_id: uuid.UUID
    customer_id: str
    kind: PaymentKind
    amount_cents: int
    created_at: datetime
    payment_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        if self.amount_cents < 0:
            raise NegativeAmount(f"payment amount {self.amount_cents} is negative")


@dataclass
class Account:
    """A customer's balance, in cents; it never goes below zero.

    `deposited_cents` is the net money ever put in by setting the balance; charges and
    refunds leave it alone, so `balance = deposited - charged + refunded` at all times.
    """

    customer_id: str
    balance_cents: int
    deposited_cents: int = 0

    def __post_init__(self) -> None:
        if self.balance_cents < 0:
            raise NegativeAmount(f"balance {self.balance_cents} is negative")

    def set_balance(self, balance_cents: int) -> None:
        """Replace the balance; the difference (which may be negative) counts as deposited."""
        if balance_cents < 0:
            raise NegativeAmount(f"balance {balance_cents} is negative")
        self.deposited_cents += balance_cents - self.balance_cents
        self.balance_cents = balance_cents

    def charge(self, order_id: uuid.UUID, amount_cents: int, at: datetime) -> Payment:
        """Debit `amount_cents` for the order, or raise `PaymentDeclined` if funds are short."""
        if amount_cents < 0:
            raise NegativeAmount(f"charge amount {amount_cents} is negative")
        if amount_cents > self.balance_cents:
            raise PaymentDeclined(DeclineReason.INSUFFICIENT_FUNDS, self.customer_id)
        self.balance_cents -= amount_cents
        return Payment(order_id, self.customer_id, PaymentKind.CHARGE, amount_cents, at)

    def refund(self, charge: Payment, at: datetime) -> Payment:
        """Credit back the whole of `charge`; return the refund."""
        if charge.kind is not PaymentKind.CHARGE or charge.customer_id != self.customer_id:
            raise AccountMismatch(f"{charge.payment_id} is not a charge of {self.customer_id}")
        self.balance_cents += charge.amount_cents
        return Payment(
            charge.order_id, self.customer_id, PaymentKind.REFUND, charge.amount_cents, at
        )


def check_currency(currency: str, customer_id: str) -> None:
    """Refuse, with `PaymentDeclined(UNSUPPORTED_CURRENCY)`, an amount not in `CURRENCY`."""
    if currency != CURRENCY:
        raise PaymentDeclined(DeclineReason.UNSUPPORTED_CURRENCY, customer_id)


def known_account(account: Account | None, customer_id: str) -> Account:
    """The account to charge, or `PaymentDeclined(UNKNOWN_ACCOUNT)` when there is none."""
    if account is None:
        raise PaymentDeclined(DeclineReason.UNKNOWN_ACCOUNT, customer_id)
    return account


def refund_of(payments: Sequence[Payment]) -> Payment | None:
    """The order's refund, if it was refunded."""
    return next((p for p in payments if p.kind is PaymentKind.REFUND), None)


def refundable_charge(payments: Sequence[Payment]) -> Payment | None:
    """The order's charge if it still has to be refunded, else None.

    None when nothing was charged (declined, or never seen) or when the refund was
    already made: compensation is idempotent and safe when there is nothing to undo.
    """
    charge = next((p for p in payments if p.kind is PaymentKind.CHARGE), None)
    return None if charge is None or refund_of(payments) else charge


@dataclass(frozen=True)
class AccountSummary:
    """An account with the totals deposited, charged and refunded over its lifetime.

    `balance_cents == deposited_cents - charged_cents + refunded_cents` unless money
    was lost or made up somewhere.
    """

    customer_id: str
    balance_cents: int
    deposited_cents: int
    charged_cents: int
    refunded_cents: int
