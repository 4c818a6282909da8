"""The console's board: saga events in, one order's lanes out. No I/O."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from saga_console.board import DLQ_TOPICS, LANES, SAGA_TOPICS, STEPS, Board, trace_id_of
from saga_console.observer import gauge
from shared_contracts import EVENTS_BY_TOPIC, PRODUCERS, Envelope, Topic, event_key

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = [("traceparent", f"00-{TRACE}-00f067aa0ba902b7-01".encode())]


def record(
    order_id: str,
    event_type: str,
    producer: str,
    ms: int,
    payload: dict[str, Any] | None = None,
    event_id: uuid.UUID | None = None,
    version: int = 1,
    versions: list[int] | None = None,
) -> bytes:
    envelope = Envelope(
        event_id=event_id or uuid.uuid4(),
        event_type=event_type,
        event_version=version,
        occurred_at=T0 + timedelta(milliseconds=ms),
        producer=producer,
        aggregate_id=order_id,
        payload={"order_id": order_id, **(payload or {})},
        versions=versions or [],
    )
    return envelope.model_dump_json().encode()


CREATED = {
    "customer_id": "ada",
    "items": [{"sku": "book", "quantity": 2, "unit_price_cents": 1500}],
    "total_cents": 3000,
}


def test_every_saga_event_has_a_step_and_a_lane():
    for topic, models in EVENTS_BY_TOPIC.items():
        if topic is Topic.PRODUCT_EVENTS:
            continue
        assert topic.value in SAGA_TOPICS
        assert PRODUCERS[topic] in LANES
        for model in models:
            assert event_key(model)[0] in STEPS, f"{model.__name__} has no step on the console"
    assert set(DLQ_TOPICS) == {t.dlq for t in Topic}


def test_a_confirmed_order_has_every_step_in_its_lane_with_its_offset():
    board = Board()
    order_id = str(uuid.uuid4())
    # Read out of order, as three topics deliver them.
    board.apply(
        "payments.events",
        record(order_id, "PaymentSucceeded", "payment", 40, {"amount_cents": 3000}),
        [],
    )
    board.apply("orders.events", record(order_id, "OrderCreated", "order", 0, CREATED), TRACEPARENT)
    board.apply(
        "inventory.events",
        record(
            order_id, "StockReserved", "inventory", 30, {"items": [{"sku": "book", "quantity": 2}]}
        ),
        [],
    )
    order = board.apply("orders.events", record(order_id, "OrderConfirmed", "order", 90), [])
    assert order is not None
    view = order.as_json()
    assert (view["status"], view["reason"], view["trace_id"]) == ("CONFIRMED", None, TRACE)
    assert (view["customer_id"], view["total_cents"]) == ("ada", 3000)
    steps = {lane: [(s["step"], s["offset_ms"]) for s in view["lanes"][lane]] for lane in LANES}
    assert steps == {
        "order": [("created", 0), ("confirmed", 90)],
        "payment": [("charged", 40)],
        "inventory": [("reserved", 30)],
        "shipping": [],
    }
    assert view["lanes"]["payment"][0]["detail"] == "$30.00"
    assert view["lanes"]["inventory"][0]["detail"] == "book x2"


def test_a_shipment_shows_in_the_shipping_lane_and_leaves_the_status_alone():
    board = Board()
    order_id = str(uuid.uuid4())
    board.apply("orders.events", record(order_id, "OrderCreated", "order", 0, CREATED), [])
    board.apply("orders.events", record(order_id, "OrderConfirmed", "order", 90), [])
    shipment = {"shipment_id": str(uuid.uuid4()), "ship_by": "2026-01-03"}
    order = board.apply(
        "shipments.events", record(order_id, "ShipmentScheduled", "shipping", 120, shipment), []
    )
    assert order is not None
    view = order.as_json()
    assert view["status"] == "CONFIRMED"
    assert [(s["step"], s["offset_ms"], s["detail"]) for s in view["lanes"]["shipping"]] == [
        ("scheduled", 120, "ships by 2026-01-03")
    ]


def test_a_cancelled_order_shows_its_reason_and_a_resent_decision_as_a_repeat():
    board = Board()
    order_id = str(uuid.uuid4())
    board.apply("orders.events", record(order_id, "OrderCreated", "order", 0, CREATED), [])
    board.apply(
        "inventory.events",
        record(
            order_id,
            "StockReservationFailed",
            "inventory",
            20,
            {"reason": "OUT_OF_STOCK", "skus": ["book"]},
        ),
        [],
    )
    for ms in (25, 30_025):
        order = board.apply(
            "orders.events",
            record(order_id, "OrderCancelled", "order", ms, {"reason": "OUT_OF_STOCK"}),
            [],
        )
    assert order is not None
    view = order.as_json()
    assert (view["status"], view["reason"]) == ("CANCELLED", "OUT_OF_STOCK")
    assert [s["repeat"] for s in view["lanes"]["order"]] == [False, False, True]
    assert view["lanes"]["inventory"][0]["detail"] == "OUT_OF_STOCK (book)"


def test_the_copies_of_an_event_in_two_versions_are_one_step():
    board = Board()
    order_id, event_id = str(uuid.uuid4()), uuid.uuid4()
    v2 = {"customer_id": "ada", "lines": [], "total": {"amount_cents": 3000, "currency": "EUR"}}
    board.apply(
        "orders.events",
        record(order_id, "OrderCreated", "order", 0, CREATED, event_id, 1, [1, 2]),
        [],
    )
    assert (
        board.apply(
            "orders.events",
            record(order_id, "OrderCreated", "order", 0, v2, event_id, 2, [1, 2]),
            [],
        )
        is None
    )
    created = board.orders[order_id].as_json()["lanes"]["order"]
    assert [(s["step"], s["versions"]) for s in created] == [("created", [1, 2])]


def test_dead_letters_are_counted_with_their_last_reason_and_poison_is_not_an_order():
    board = Board()
    headers = [("dlq.reason", b"not JSON"), ("dlq.consumer", b"payment")]
    assert board.apply("orders.events.dlq", b"garbage", headers) is None
    assert board.apply("orders.events", b"garbage", []) is None
    assert board.dead_letters_json()["orders.events.dlq"] == {
        "count": 1,
        "last_reason": "not JSON",
        "last_consumer": "payment",
    }
    assert (board.unreadable, len(board.orders)) == (1, 0)


def test_reading_everything_again_counts_each_record_once():
    board = Board()
    order_id = str(uuid.uuid4())
    created = record(order_id, "OrderCreated", "order", 0, CREATED)
    headers = [("dlq.reason", b"not JSON"), ("dlq.consumer", b"payment")]
    for _ in range(2):  # a new reader after the broker came back: every record again
        board.read_again()
        board.apply("orders.events", created, [])
        board.apply("orders.events.dlq", b"garbage", headers)
        board.apply("orders.events", b"garbage", [])
    assert board.dead_letters_json()["orders.events.dlq"]["count"] == 1
    assert board.unreadable == 1
    lanes = board.orders[order_id].as_json()["lanes"]
    assert [s["step"] for s in lanes["order"]] == ["created"]


def test_only_the_most_recent_orders_are_kept():
    board = Board(max_orders=3)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    for i, order_id in enumerate(ids):
        board.apply("orders.events", record(order_id, "OrderCreated", "order", i, CREATED), [])
    assert [o.order_id for o in board.recent()] == ids[:1:-1]


def test_trace_ids_come_from_a_valid_traceparent_only():
    assert trace_id_of(TRACEPARENT) == TRACE
    assert trace_id_of([("traceparent", b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01")]) is None
    assert trace_id_of([("traceparent", b"nonsense")]) is None
    assert trace_id_of([]) is None


def test_the_outbox_backlog_is_read_from_prometheus_text():
    text = "# HELP outbox_backlog rows\n# TYPE outbox_backlog gauge\noutbox_backlog 7.0\n"
    assert gauge(text, "outbox_backlog") == 7.0
    assert gauge(text, "consumer_lag") is None
