"""What the console knows: each order's saga, step by step, as read from the event topics.

Pure state, no I/O: `Board.apply` takes one Kafka record (topic, value, headers) and
returns the order it changed, or None. The observer feeds it; the web app shows it.

An order has a lane per service that publishes about it (the envelope's `producer`):
order (created, confirmed, cancelled), payment (charged, declined, refunded, voided),
inventory (reserved, rejected, sold, released), and shipping (scheduled, cancelled),
which acts on the saga's outcome. Each step keeps
when its producer decided it (`occurred_at`), so the page shows real timings, not when
the console happened to read it. The records of one order arrive on three topics and
so in no guaranteed order; steps are kept sorted by time.
"""

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared_contracts import PRODUCERS, Envelope, Topic

LANES: tuple[str, ...] = ("order", "payment", "inventory", "shipping")
"""The services an order passes through, in the order the page shows them: the saga's
three, then shipping, which acts on its outcome (its lane shows once it has a step)."""

STEPS: Mapping[str, str] = {
    "OrderCreated": "created",
    "OrderConfirmed": "confirmed",
    "OrderCancelled": "cancelled",
    "PaymentSucceeded": "charged",
    "PaymentFailed": "declined",
    "PaymentRefunded": "refunded",
    "PaymentVoided": "voided",
    "StockReserved": "reserved",
    "StockReservationFailed": "rejected",
    "StockReleased": "released",
    "StockSold": "sold",
    "ShipmentScheduled": "scheduled",
    "ShipmentCancelled": "cancelled",
}
"""The step each saga event stands for, in the words of the workshop."""

SAGA_TOPICS: tuple[str, ...] = tuple(
    t.value for t in Topic if t is not Topic.PRODUCT_EVENTS and PRODUCERS[t] in LANES
)
"""The topics that carry orders' sagas (the catalog topic does not)."""

DLQ_TOPICS: tuple[str, ...] = tuple(t.dlq for t in Topic)
"""Every dead-letter topic: the console counts what lands there."""

MAX_ORDERS = 200
"""Orders kept in memory; the oldest go first. A workshop looks at the last few."""

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


@dataclass(frozen=True)
class Step:
    """One saga event of an order, as its producer published it."""

    step: str
    event_type: str
    at: datetime
    versions: tuple[int, ...]
    detail: str
    repeat: bool
    """The lane already had this step: a decision sent again, or its answer."""


@dataclass
class OrderView:
    """One order's saga as the event topics tell it."""

    order_id: str
    customer_id: str | None = None
    total_cents: int | None = None
    trace_id: str | None = None
    lanes: dict[str, list[Step]] = field(default_factory=lambda: {lane: [] for lane in LANES})
    event_ids: set[str] = field(default_factory=set)

    @property
    def created_at(self) -> datetime | None:
        """When the order was placed, or its earliest step while OrderCreated is not read yet."""
        created = [s.at for s in self.lanes["order"] if s.event_type == "OrderCreated"]
        steps = created or [s.at for lane in self.lanes.values() for s in lane]
        return min(steps) if steps else None

    @property
    def status(self) -> str:
        """PENDING until the order service decides; then its latest decision."""
        decisions = [s for s in self.lanes["order"] if s.event_type != "OrderCreated"]
        if not decisions:
            return "PENDING"
        return (
            "CONFIRMED" if max(decisions, key=lambda s: s.at).step == "confirmed" else "CANCELLED"
        )

    @property
    def reason(self) -> str | None:
        """Why it was cancelled (the latest cancellation's reason), None otherwise."""
        if self.status != "CANCELLED":
            return None
        cancelled = [s for s in self.lanes["order"] if s.event_type == "OrderCancelled"]
        return max(cancelled, key=lambda s: s.at).detail or None

    def as_json(self) -> dict[str, Any]:
        """The order for the page: lanes of steps, each with its time since the order was placed."""
        start = self.created_at
        return {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "total_cents": self.total_cents,
            "trace_id": self.trace_id,
            "status": self.status,
            "reason": self.reason,
            "created_at": start.isoformat() if start else None,
            "lanes": {
                lane: [
                    {
                        "step": s.step,
                        "event_type": s.event_type,
                        "at": s.at.isoformat(),
                        "offset_ms": round((s.at - start).total_seconds() * 1000) if start else 0,
                        "versions": list(s.versions),
                        "detail": s.detail,
                        "repeat": s.repeat,
                    }
                    for s in steps
                ]
                for lane, steps in self.lanes.items()
            },
        }


@dataclass
class DeadLetters:
    """What one dead-letter topic holds: how many records, and why the last one is there."""

    count: int = 0
    last_reason: str | None = None
    last_consumer: str | None = None


class Board:
    """The orders (the most recent `MAX_ORDERS`) and the dead-letter counts, kept up to date."""

    def __init__(self, max_orders: int = MAX_ORDERS) -> None:
        self.orders: OrderedDict[str, OrderView] = OrderedDict()
        self.dead_letters: dict[str, DeadLetters]
        self.unreadable: int
        """Records on the saga topics that are not an envelope (poison); the DLQs count them too."""
        self._max_orders = max_orders
        self.read_again()  # the counts start at zero

    def read_again(self) -> None:
        """Forget the counts, before a new reader reads every topic again from its start.

        Orders skip an event they have seen, by its id; the counts of dead letters and
        unreadable records have no id to skip by, so they start again from zero.
        """
        self.dead_letters = {topic: DeadLetters() for topic in DLQ_TOPICS}
        self.unreadable = 0

    def apply(
        self, topic: str, value: bytes | None, headers: Sequence[tuple[str, bytes]]
    ) -> OrderView | None:
        """Take one record; return the order it changed (None: a dead letter, a copy, not an order)."""
        if topic in self.dead_letters:
            self._dead_letter(topic, dict(headers))
            return None
        try:
            envelope = Envelope.model_validate_json(value or b"")
        except ValidationError:
            self.unreadable += 1
            return None
        step = STEPS.get(envelope.event_type)
        lane = envelope.producer
        if step is None or lane not in LANES:
            return None
        order = self._order(envelope.aggregate_id)
        event_id = str(envelope.event_id)
        if event_id in order.event_ids:
            return None  # the same event again: redelivered, or another version's copy
        order.event_ids.add(event_id)
        steps = order.lanes[lane]
        steps.append(
            Step(
                step=step,
                event_type=envelope.event_type,
                at=envelope.occurred_at,
                versions=tuple(envelope.versions or [envelope.event_version]),
                detail=_detail(envelope.event_type, envelope.payload),
                repeat=any(s.event_type == envelope.event_type for s in steps),
            )
        )
        steps.sort(key=lambda s: s.at)
        if envelope.event_type == "OrderCreated":
            order.customer_id = envelope.payload.get("customer_id")
            order.total_cents = _total_cents(envelope.payload)
        trace_id = trace_id_of(headers)
        # The order's trace is the one its creation started; later steps continue it,
        # except a timeout or a customer's cancel, which start traces of their own.
        if trace_id and (order.trace_id is None or envelope.event_type == "OrderCreated"):
            order.trace_id = trace_id
        return order

    def recent(self, limit: int = 50) -> list[OrderView]:
        """The most recently placed orders, newest first."""
        return list(reversed(self.orders.values()))[:limit]

    def dead_letters_json(self) -> dict[str, dict[str, Any]]:
        """Each dead-letter topic's count and last reason, for the page."""
        return {
            topic: {
                "count": d.count,
                "last_reason": d.last_reason,
                "last_consumer": d.last_consumer,
            }
            for topic, d in self.dead_letters.items()
        }

    def _order(self, order_id: str) -> OrderView:
        order = self.orders.get(order_id)
        if order is None:
            order = self.orders[order_id] = OrderView(order_id)
            while len(self.orders) > self._max_orders:
                self.orders.popitem(last=False)
        return order

    def _dead_letter(self, topic: str, headers: Mapping[str, bytes]) -> None:
        dead = self.dead_letters[topic]
        dead.count += 1
        dead.last_reason = headers.get("dlq.reason", b"").decode(errors="replace") or None
        dead.last_consumer = headers.get("dlq.consumer", b"").decode(errors="replace") or None


def trace_id_of(headers: Sequence[tuple[str, bytes]]) -> str | None:
    """The trace id in a record's W3C `traceparent` header, if it has a valid one."""
    for key, value in headers:
        if key == "traceparent":
            match = _TRACEPARENT.match(value.decode(errors="replace").strip())
            if match and match.group(1) != "0" * 32:
                return match.group(1)
    return None


def _total_cents(payload: Mapping[str, Any]) -> int | None:
    # OrderCreated v1 has `total_cents`, v2 `total.amount_cents`: read whichever copy came.
    total = payload.get("total_cents", payload.get("total", {}).get("amount_cents"))
    return total if isinstance(total, int) else None


def _lines(items: Any) -> str:
    if not isinstance(items, list):
        return ""
    return ", ".join(f"{i.get('sku')} x{i.get('quantity')}" for i in items if isinstance(i, dict))


def _money(cents: Any) -> str:
    return f"${cents / 100:,.2f}" if isinstance(cents, int) else ""


def _detail(event_type: str, payload: Mapping[str, Any]) -> str:
    """A few words about the event: what was charged, reserved, or why it failed."""
    if event_type == "OrderCreated":
        return f"{_lines(payload.get('items', payload.get('lines')))} for {_money(_total_cents(payload))}"
    if event_type in ("OrderCancelled", "PaymentFailed"):
        return str(payload.get("reason", ""))
    if event_type == "StockReservationFailed":
        return f"{payload.get('reason', '')} ({', '.join(map(str, payload.get('skus', [])))})"
    if event_type in ("PaymentSucceeded", "PaymentRefunded"):
        return _money(payload.get("amount_cents"))
    if event_type in ("StockReserved", "StockReleased", "StockSold"):
        return _lines(payload.get("items")) or "nothing held"
    if event_type == "ShipmentScheduled":
        return f"ships by {payload.get('ship_by', '')}"
    return ""
