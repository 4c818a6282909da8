import uuid
from datetime import UTC, datetime

import pytest

from payment_service.domain.model import (
    Account,
    AccountMismatch,
    DeclineReason,
    NegativeAmount,
    Payment,
    PaymentDeclined,
    PaymentKind,
    check_currency,
    known_account,
    refundable_charge,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def a_charge(customer_id: str = "alice", amount: int = 700) -> Payment:
    return Payment(uuid.uuid4(), customer_id, PaymentKind.CHARGE, amount, NOW)


def test_a_charge_debits_the_balance_and_records_the_amount():
    account = Account("alice", 1000)
    order_id = uuid.uuid4()

    charge = account.charge(order_id, 700, at=NOW)

    assert account.balance_cents == 300
    assert (charge.order_id, charge.customer_id, charge.kind, charge.amount_cents) == (
        order_id,
        "alice",
        PaymentKind.CHARGE,
        700,
    )


def test_a_charge_may_take_the_whole_balance():
    account = Account("alice", 700)
    account.charge(uuid.uuid4(), 700, at=NOW)
    assert account.balance_cents == 0


def test_a_charge_above_the_balance_is_declined_and_changes_nothing():
    account = Account("alice", 699)

    with pytest.raises(PaymentDeclined) as declined:
        account.charge(uuid.uuid4(), 700, at=NOW)

    assert declined.value.reason is DeclineReason.INSUFFICIENT_FUNDS
    assert account.balance_cents == 699


def test_an_unknown_account_is_declined():
    with pytest.raises(PaymentDeclined) as declined:
        known_account(None, "nobody")
    assert declined.value.reason is DeclineReason.UNKNOWN_ACCOUNT
    assert declined.value.customer_id == "nobody"


def test_a_known_account_is_returned_as_is():
    account = Account("alice", 1)
    assert known_account(account, "alice") is account


def test_a_free_order_is_charged_zero():
    account = Account("alice", 0)
    assert account.charge(uuid.uuid4(), 0, at=NOW).amount_cents == 0


@pytest.mark.parametrize("balance", [-1, -1000])
def test_a_balance_is_never_negative(balance):
    with pytest.raises(NegativeAmount):
        Account("alice", balance)


def test_a_negative_charge_is_refused():
    with pytest.raises(NegativeAmount):
        Account("alice", 10).charge(uuid.uuid4(), -5, at=NOW)


def test_a_refund_credits_back_the_whole_charge():
    account = Account("alice", 300)
    charge = a_charge(amount=700)

    refund = account.refund(charge, at=NOW)

    assert account.balance_cents == 1000
    assert (refund.order_id, refund.kind, refund.amount_cents) == (
        charge.order_id,
        PaymentKind.REFUND,
        700,
    )
    assert refund.payment_id != charge.payment_id


def test_a_refund_goes_only_to_the_account_charged():
    with pytest.raises(AccountMismatch):
        Account("bob", 0).refund(a_charge("alice"), at=NOW)


def test_a_refund_cannot_be_refunded():
    account = Account("alice", 0)
    refund = account.refund(a_charge(), at=NOW)
    with pytest.raises(AccountMismatch):
        account.refund(refund, at=NOW)


def test_the_charge_of_a_cancelled_order_is_refundable():
    charge = a_charge()
    assert refundable_charge([charge]) == charge


def test_nothing_is_refunded_when_nothing_was_charged():
    assert refundable_charge([]) is None


def test_a_charge_is_refunded_only_once():
    charge = a_charge()
    refund = Account("alice", 0).refund(charge, at=NOW)
    assert refundable_charge([charge, refund]) is None


def test_payments_carry_unique_ids():
    assert a_charge().payment_id != a_charge().payment_id


def test_only_the_balances_currency_is_charged():
    check_currency("EUR", "alice")
    with pytest.raises(PaymentDeclined, match="UNSUPPORTED_CURRENCY"):
        check_currency("USD", "alice")
