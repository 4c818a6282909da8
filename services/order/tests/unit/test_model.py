from datetime import UTC, datetime
from uuid import uuid4

import pytest

from order_service.domain.model import (
    AlreadyCancelled,
    Line,
    Order,
    Outcome,
    Participant,
    Product,
    Reason,
    Status,
    UnknownSkus,
    price_lines,
)

NOW = datetime(2026, 11, 22, tzinfo=UTC)
LATER = datetime(2026, 11, 22, 0, 1, tzinfo=UTC)


def new_order() -> Order:
    return Order.place(uuid4(), "alice", [Line("apple", 2, 150), Line("pear", 1, 300)], NOW)


def steps(order: Order) -> list[str]:
    return [s.step for s in order.timeline]


def test_a_placed_order_is_pending_and_totals_its_lines():
    order = new_order()
    assert order.status is Status.PENDING
    assert order.total_cents == 600
    assert steps(order) == ["OrderCreated"]


def test_pricing_uses_the_catalog_and_refuses_unknown_skus():
    catalog = {"apple": Product("apple", "Apple", 150)}
    assert price_lines([("apple", 3)], catalog) == [Line("apple", 3, 150)]
    with pytest.raises(UnknownSkus, match="kiwi, plum"):
        price_lines([("apple", 1), ("plum", 1), ("kiwi", 2)], catalog)


@pytest.mark.parametrize("payment_first", [True, False])
def test_both_successes_confirm_in_either_order(payment_first):
    order = new_order()
    answers = [order.payment_answered, order.stock_answered]
    for answer in answers if payment_first else reversed(answers):
        assert order.status is Status.PENDING
        answer(Outcome.SUCCEEDED, NOW)
    assert order.status is Status.CONFIRMED
    assert steps(order)[-1] == "OrderConfirmed"


def test_a_declined_payment_cancels_at_once():
    order = new_order()
    order.payment_answered(Outcome.FAILED, NOW, reason="INSUFFICIENT_FUNDS")
    assert (order.status, order.reason) == (Status.CANCELLED, Reason.PAYMENT_DECLINED)
    assert steps(order) == ["OrderCreated", "PaymentFailed", "OrderCancelled"]


def test_missing_stock_cancels_even_after_payment_succeeded():
    order = new_order()
    order.payment_answered(Outcome.SUCCEEDED, NOW)
    order.stock_answered(Outcome.FAILED, NOW)
    assert (order.status, order.reason) == (Status.CANCELLED, Reason.OUT_OF_STOCK)


def test_results_after_cancellation_are_recorded_as_late_and_change_nothing():
    order = new_order()
    order.overdue(NOW)
    order.payment_answered(Outcome.SUCCEEDED, NOW)
    order.stock_answered(Outcome.SUCCEEDED, NOW)
    assert (order.status, order.reason) == (Status.CANCELLED, Reason.TIMEOUT)
    assert [s.detail.get("late") for s in order.timeline[-2:]] == [True, True]
    assert steps(order).count("OrderCancelled") == 1


def test_a_second_failure_does_not_cancel_twice():
    order = new_order()
    order.payment_answered(Outcome.FAILED, NOW)
    order.stock_answered(Outcome.FAILED, NOW)
    assert order.reason is Reason.PAYMENT_DECLINED
    assert steps(order).count("OrderCancelled") == 1


def test_customer_may_cancel_a_confirmed_order_but_not_a_cancelled_one():
    order = new_order()
    order.payment_answered(Outcome.SUCCEEDED, NOW)
    order.stock_answered(Outcome.SUCCEEDED, NOW)
    order.cancel(Reason.CUSTOMER_CANCELLED, NOW)
    assert (order.status, order.reason) == (Status.CANCELLED, Reason.CUSTOMER_CANCELLED)
    with pytest.raises(AlreadyCancelled):
        order.cancel(Reason.CUSTOMER_CANCELLED, NOW)


def confirmed_order() -> Order:
    order = new_order()
    order.payment_answered(Outcome.SUCCEEDED, NOW)
    order.stock_answered(Outcome.SUCCEEDED, NOW)
    return order


def test_an_overdue_pending_order_times_out():
    order = new_order()
    order.overdue(LATER)
    assert (order.status, order.reason) == (Status.CANCELLED, Reason.TIMEOUT)
    assert order.awaiting_since == LATER


def test_a_confirmation_awaits_inventory_and_a_cancellation_both():
    order = confirmed_order()
    assert (order.awaiting, order.awaiting_since) == ([Participant.INVENTORY], NOW)
    order.answered("StockSold", LATER)
    assert (order.awaiting, order.awaiting_since) == ([], None)
    order.cancel(Reason.CUSTOMER_CANCELLED, LATER)
    assert order.awaiting == [Participant.PAYMENT, Participant.INVENTORY]
    order.answered("PaymentRefunded", LATER, amount_cents=600)
    assert order.awaiting == [Participant.INVENTORY]
    order.answered("StockReleased", LATER)
    assert (order.awaiting, order.awaiting_since) == ([], None)


def test_an_unanswered_decision_goes_out_again_and_a_confirmed_order_does_not_time_out():
    order = confirmed_order()
    order.overdue(LATER)
    assert order.status is Status.CONFIRMED
    assert steps(order)[-1] == "DecisionResent"
    assert order.timeline[-1].detail == {"decision": "OrderConfirmed", "awaiting": ["inventory"]}
    assert order.awaiting_since == LATER


def test_each_resend_is_counted_so_the_next_waits_longer_and_a_new_decision_starts_over():
    order = confirmed_order()
    order.overdue(LATER)
    order.overdue(LATER)
    assert order.resends == 2
    order.cancel(Reason.CUSTOMER_CANCELLED, LATER)
    assert (order.resends, order.awaiting_since) == (0, LATER)


def test_an_answered_decision_is_not_sent_again():
    order = new_order()
    order.payment_answered(Outcome.FAILED, NOW)
    order.answered("PaymentVoided", NOW)
    order.answered("StockReleased", NOW)
    order.overdue(LATER)
    assert steps(order)[-1] == "StockReleased"


def test_an_answer_to_a_decision_sent_twice_is_recorded_once():
    order = new_order()
    order.overdue(NOW)
    order.overdue(LATER)
    for _ in range(2):
        order.answered("PaymentVoided", LATER)
    assert steps(order).count("PaymentVoided") == 1
    assert order.awaiting == [Participant.INVENTORY]


def test_an_answer_to_an_earlier_decision_does_not_answer_the_cancellation():
    order = confirmed_order()
    order.cancel(Reason.CUSTOMER_CANCELLED, NOW)
    order.answered("StockSold", LATER)  # answers the confirmation, arriving late
    assert order.awaiting == [Participant.PAYMENT, Participant.INVENTORY]
