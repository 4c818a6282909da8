"""The order and the saga state machine that decides it.

Payment and inventory answer in any order. The order confirms when both succeeded,
cancels as soon as either failed, and once it is terminal it only records what
arrives late (compensation of late successes is the other services' job: they
react to OrderCancelled).

Each decision is answered in turn: inventory answers OrderConfirmed with StockSold;
payment answers OrderCancelled with PaymentRefunded or PaymentVoided, inventory with
StockReleased. Until both have, the order is `awaiting` them and the decision is sent
again now and then: a broker that loses an acknowledged event (the in-memory one of the
local stack, on restart) cannot leave a charge or a reservation behind.
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class Status(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


class Reason(StrEnum):
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    TIMEOUT = "TIMEOUT"
    CUSTOMER_CANCELLED = "CUSTOMER_CANCELLED"


class Outcome(StrEnum):
    """What payment or inventory answered."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class Participant(StrEnum):
    """A service that acts on the order's decisions."""

    PAYMENT = "payment"
    INVENTORY = "inventory"


DECISIONS: dict[Status, str] = {
    Status.CONFIRMED: "OrderConfirmed",
    Status.CANCELLED: "OrderCancelled",
}
"""The step, and the event, by which the order tells the participants its outcome."""

ANSWERS: dict[Status, dict[Participant, frozenset[str]]] = {
    Status.CONFIRMED: {Participant.INVENTORY: frozenset({"StockSold"})},
    Status.CANCELLED: {
        Participant.PAYMENT: frozenset({"PaymentRefunded", "PaymentVoided"}),
        Participant.INVENTORY: frozenset({"StockReleased"}),
    },
}
"""Who must answer each decision, and the steps that count as their answer."""


class OrderError(Exception):
    """A command the order's rules refuse."""


class AlreadyCancelled(OrderError):
    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"order {order_id} is already cancelled")


class UnknownSkus(OrderError):
    def __init__(self, skus: list[str]) -> None:
        super().__init__(f"unknown SKU(s): {', '.join(skus)}")
        self.skus = skus


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclass(frozen=True)
class Step:
    """One entry of the saga history: what happened, when, and details such as a reason."""

    step: str
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Product:
    """The order service's replica of a product: enough to price a line."""

    sku: str
    name: str
    unit_price_cents: int


def price_lines(requested: list[tuple[str, int]], catalog: dict[str, Product]) -> list[Line]:
    """Price `(sku, quantity)` pairs from the catalog replica; refuse unknown SKUs."""
    unknown = sorted({sku for sku, _ in requested if sku not in catalog})
    if unknown:
        raise UnknownSkus(unknown)
    return [Line(sku, quantity, catalog[sku].unit_price_cents) for sku, quantity in requested]


@dataclass
class Order:
    order_id: UUID
    customer_id: str
    lines: list[Line]
    created_at: datetime
    status: Status = Status.PENDING
    reason: Reason | None = None
    payment: Outcome | None = None
    stock: Outcome | None = None
    awaiting_since: datetime | None = None
    """When the decision still awaiting answers was last sent; None when none is awaited."""
    resends: int = 0
    """How often the decision awaiting answers was sent again: each wait doubles."""
    history: list[Step] = field(default_factory=list)
    new_steps: list[Step] = field(default_factory=list)
    """Steps recorded since the order was loaded; the repository saves them."""

    @classmethod
    def place(cls, order_id: UUID, customer_id: str, lines: list[Line], now: datetime) -> "Order":
        order = cls(order_id, customer_id, lines, created_at=now)
        order.record("OrderCreated", now, total_cents=order.total_cents)
        return order

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    @property
    def timeline(self) -> list[Step]:
        return self.history + self.new_steps

    @property
    def decision(self) -> str | None:
        """`OrderConfirmed` or `OrderCancelled` once the order is terminal, else None."""
        return DECISIONS.get(self.status)

    @property
    def awaiting(self) -> list[Participant]:
        """The participants that have not answered the order's decision yet."""
        if self.decision is None:
            return []
        steps = [s.step for s in self.timeline]
        since = set(steps[steps.index(self.decision) :])
        return [who for who, answers in ANSWERS[self.status].items() if not answers & since]

    def record(self, step: str, now: datetime, **detail: Any) -> None:
        self.new_steps.append(Step(step, now, detail))

    def answered(self, step: str, now: datetime, **detail: Any) -> None:
        """A participant carried out a decision: refunded, voided, released or sold.

        Answers to a decision sent again repeat the first: only the first is recorded.
        """
        if any(s.step == step for s in self.timeline):
            return
        self.record(step, now, **detail)
        if not self.awaiting:
            self.awaiting_since = None

    def payment_answered(self, outcome: Outcome, now: datetime, **detail: Any) -> None:
        """Payment charged the customer or declined."""
        step = "PaymentSucceeded" if outcome is Outcome.SUCCEEDED else "PaymentFailed"
        self._answer(step, now, detail)
        if self.status is Status.PENDING:
            self.payment = outcome
            self._decide(now)

    def stock_answered(self, outcome: Outcome, now: datetime, **detail: Any) -> None:
        """Inventory reserved every line or could not."""
        step = "StockReserved" if outcome is Outcome.SUCCEEDED else "StockReservationFailed"
        self._answer(step, now, detail)
        if self.status is Status.PENDING:
            self.stock = outcome
            self._decide(now)

    def cancel(self, reason: Reason, now: datetime) -> None:
        """Cancel a pending or confirmed order; compensation follows from OrderCancelled."""
        if self.status is Status.CANCELLED:
            raise AlreadyCancelled(self.order_id)
        self.status, self.reason = Status.CANCELLED, reason
        self.record("OrderCancelled", now, reason=reason.value)
        self.awaiting_since, self.resends = now, 0

    def overdue(self, now: datetime) -> None:
        """Answers did not come in time: a pending order times out, a decision goes out again.

        The sweep calls this once the wait is over: the saga timeout for a pending order,
        and for a decision the timeout doubled per re-send (`resends`), so that a
        participant that is down for long is not flooded with copies.
        """
        if self.status is Status.PENDING:
            self.cancel(Reason.TIMEOUT, now)
        elif awaiting := self.awaiting:
            # The step `DecisionResent` publishes the decision again (a new event id).
            who = [participant.value for participant in awaiting]
            self.record("DecisionResent", now, decision=self.decision, awaiting=who)
            self.awaiting_since, self.resends = now, self.resends + 1

    def _answer(self, step: str, now: datetime, detail: dict[str, Any]) -> None:
        if self.status is not Status.PENDING:
            detail = {**detail, "late": True, "order_status": self.status.value}
        self.record(step, now, **detail)

    def _decide(self, now: datetime) -> None:
        if self.payment is Outcome.FAILED:
            self.cancel(Reason.PAYMENT_DECLINED, now)
        elif self.stock is Outcome.FAILED:
            self.cancel(Reason.OUT_OF_STOCK, now)
        elif self.payment is Outcome.SUCCEEDED and self.stock is Outcome.SUCCEEDED:
            self.status = Status.CONFIRMED
            self.record("OrderConfirmed", now)
            self.awaiting_since, self.resends = now, 0
