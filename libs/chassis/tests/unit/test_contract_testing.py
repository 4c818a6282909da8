"""Consumer expectations: how they are read, turned into JSON Schema and checked."""

import uuid
from pathlib import Path

import pytest

from chassis.contract_testing import (
    Expectation,
    Published,
    load_expectations,
    problems,
    published_by,
    verify,
)

INVENTORY_READS_ORDER_CREATED = Expectation(
    consumer="inventory",
    event_type="OrderCreated",
    event_version=1,
    topic="orders.events",
    fields={"order_id": "uuid", "items": [{"sku": "string", "quantity": "integer"}]},
)


def order_created(**payload) -> Published:
    envelope = {
        "event_id": str(uuid.uuid4()),
        "event_type": "OrderCreated",
        "event_version": 1,
        "payload": payload,
    }
    return Published("orders.events", envelope)


def write(services: Path, service: str, text: str) -> None:
    path = services / service / "contracts" / "consumes.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)


def test_an_expectation_is_the_json_schema_of_the_envelopes_its_consumer_reads():
    assert INVENTORY_READS_ORDER_CREATED.schema() == {
        "type": "object",
        "required": ["event_id", "event_type", "event_version", "payload"],
        "properties": {
            "event_id": {"type": "string", "format": "uuid"},
            "event_type": {"const": "OrderCreated"},
            "event_version": {"const": 1},
            "payload": {
                "type": "object",
                "required": ["order_id", "items"],
                "properties": {
                    "order_id": {"type": "string", "format": "uuid"},
                    "items": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["sku", "quantity"],
                            "properties": {
                                "sku": {"type": "string"},
                                "quantity": {"type": "integer"},
                            },
                        },
                    },
                },
            },
        },
    }


def test_an_event_with_what_the_consumer_reads_passes_whatever_else_it_carries():
    event = order_created(
        order_id=str(uuid.uuid4()), items=[{"sku": "a", "quantity": 1, "new": 1}], more="x"
    )
    assert problems(event, [INVENTORY_READS_ORDER_CREATED]) == []


def test_problems_name_the_consumer_the_event_and_the_field():
    event = order_created(order_id="42", items=[{"sku": "a"}, {"sku": 7, "quantity": 1}])

    assert problems(event, [INVENTORY_READS_ORDER_CREATED]) == [
        "inventory cannot read OrderCreated v1: payload.order_id: '42' is not a 'uuid'",
        "inventory cannot read OrderCreated v1: payload.items[0]: "
        "'quantity' is a required property",
        "inventory cannot read OrderCreated v1: payload.items[1].sku: 7 is not of type 'string'",
    ]


def test_an_event_no_consumer_reads_has_no_problems():
    other = Published("orders.events", {"event_type": "OrderConfirmed", "event_version": 1})
    assert problems(other, [INVENTORY_READS_ORDER_CREATED]) == []


def test_verify_reports_an_event_of_the_producer_the_run_never_wrote():
    event = order_created(order_id=str(uuid.uuid4()), items=[])
    payment_reads_cancelled = Expectation(
        "payment", "OrderCancelled", 1, "orders.events", {"order_id": "uuid"}
    )

    found = verify("order", [event], [INVENTORY_READS_ORDER_CREATED, payment_reads_cancelled])

    assert found == [
        "order never wrote OrderCancelled v1 in this run, so what its consumers (payment) "
        "read of it is unchecked",
        "order never wrote OrderConfirmed v1 in this run, so what its consumers (none yet) "
        "read of it is unchecked",
        "order never wrote OrderCreated v2 in this run, so what its consumers (none yet) "
        "read of it is unchecked",
    ]


def test_a_producer_publishes_every_event_on_its_topics():
    assert ("ProductUpdated", 1) in published_by("inventory")
    assert ("StockSold", 1) in published_by("inventory")
    assert published_by("order") == {
        ("OrderCreated", 1),
        ("OrderCreated", 2),
        ("OrderConfirmed", 1),
        ("OrderCancelled", 1),
    }


def test_each_service_directory_names_its_consumer(tmp_path):
    write(
        tmp_path,
        "shipping",
        "events:\n"
        "  - {event_type: OrderConfirmed, event_version: 1, topic: orders.events,"
        " fields: {order_id: uuid}}\n",
    )
    write(tmp_path, "billing", "events: []\n")

    [expectation] = load_expectations(tmp_path)

    assert expectation == Expectation(
        "shipping", "OrderConfirmed", 1, "orders.events", {"order_id": "uuid"}
    )


@pytest.mark.parametrize(
    ("entry", "error"),
    [
        (
            "{event_type: OrderConfirmed, event_version: 1, topic: orders.events,"
            " fields: {order_id: int}}",
            r"\$\.events\[0\]\.fields\.order_id: 'int' is not valid",
        ),
        (
            "{event_type: OrderConfirmed, event_version: 1, topic: orders.events}",
            "'fields' is a required property",
        ),
        (
            "{event_type: OrderConfirmed, event_version: 9, topic: orders.events,"
            " fields: {order_id: uuid}}",
            "OrderConfirmed v9 is not a published event",
        ),
        (
            "{event_type: OrderConfirmed, event_version: 1, topic: payments.events,"
            " fields: {order_id: uuid}}",
            "OrderConfirmed v1 is published on orders.events, not payments.events",
        ),
    ],
)
def test_a_wrong_declaration_is_refused_naming_the_file(tmp_path, entry, error):
    write(tmp_path, "shipping", f"events:\n  - {entry}\n")

    with pytest.raises(ValueError, match=error) as refused:
        load_expectations(tmp_path)

    assert "shipping/contracts/consumes.yaml" in str(refused.value)


def test_an_event_declared_twice_is_refused(tmp_path):
    entry = (
        "  - {event_type: OrderConfirmed, event_version: 1, topic: orders.events,"
        " fields: {order_id: uuid}}\n"
    )
    write(tmp_path, "shipping", "events:\n" + entry + entry)

    with pytest.raises(ValueError, match="OrderConfirmed v1 is declared twice"):
        load_expectations(tmp_path)
