"""What the consumer treats as transient or as poison, and which copy it applies; no I/O."""

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from chassis.consumer import (
    Delivery,
    Dispatcher,
    PoisonMessage,
    identifiers,
    is_transient,
    read_envelope,
    read_payload,
)
from shared_contracts import Envelope
from shared_contracts.inventory.v1 import ProductUpdated
from shared_contracts.order import v1 as order_v1
from shared_contracts.order import v2 as order_v2


class FakeDriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def db_error(sqlstate: str | None, cls: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return cls("SELECT 1", {}, FakeDriverError(sqlstate))


@pytest.mark.parametrize(
    "exc",
    [
        OSError("network down"),
        ConnectionRefusedError("refused"),
        TimeoutError(),
        PoolTimeout("QueuePool limit reached"),
        db_error(None, OperationalError),
        db_error(None, InterfaceError),
        db_error("08006"),  # connection failure
        db_error("40001"),  # serialization failure
        db_error("40P01"),  # deadlock
        db_error("53300"),  # too many connections
        db_error("57P01"),  # admin shutdown
    ],
    ids=repr,
)
def test_transient(exc: BaseException) -> None:
    assert is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        KeyError("missing"),
        PoisonMessage("never"),
        db_error("23505", IntegrityError),  # unique violation
        db_error("22P02"),  # invalid text representation
        db_error(None),
    ],
    ids=repr,
)
def test_not_transient(exc: BaseException) -> None:
    assert not is_transient(exc)


def test_an_invalidated_connection_is_transient() -> None:
    exc = DBAPIError("SELECT 1", {}, FakeDriverError("23505"), connection_invalidated=True)
    assert is_transient(exc)


def envelope(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "event_id": uuid.uuid4(),
        "event_type": "ProductUpdated",
        "event_version": 1,
        "occurred_at": datetime.now(UTC),
        "producer": "test",
        "aggregate_id": "sku",
        "payload": {"sku": "sku", "name": "n", "unit_price_cents": 1, "version": 1},
    }
    return Envelope.model_validate(fields | overrides).model_dump_json().encode()


def parse(value: bytes | None) -> tuple[Envelope, BaseModel]:
    envelope = read_envelope(value)
    return envelope, read_payload(envelope)


def test_parse_returns_the_typed_payload() -> None:
    parsed, payload = parse(envelope())
    assert parsed.event_type == "ProductUpdated"
    assert payload == ProductUpdated(sku="sku", name="n", unit_price_cents=1, version=1)


def test_parse_ignores_unknown_fields() -> None:
    _, payload = parse(
        envelope(payload={"sku": "s", "name": "n", "unit_price_cents": 1, "version": 1, "x": 1})
    )
    assert isinstance(payload, ProductUpdated)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "no value"),
        (b"", "not an event envelope"),
        (b"\x00\xff", "not an event envelope"),
        (b"[1, 2]", "not an event envelope"),
        (b'{"event_type": "ProductUpdated"}', "not an event envelope"),
        (envelope(event_type="Nope"), "unknown event Nope version 1"),
        (envelope(event_version=2), "unknown event ProductUpdated version 2"),
        (envelope(payload={"sku": "s"}), "invalid ProductUpdated payload"),
    ],
)
def test_parse_rejects_poison(value: bytes | None, reason: str) -> None:
    with pytest.raises(PoisonMessage, match=reason):
        parse(value)


async def apply_v1(delivery: Delivery, event: BaseModel) -> None: ...


async def apply_v2(delivery: Delivery, event: BaseModel) -> None: ...


def order_created(version: int, versions: list[int]) -> Envelope:
    return Envelope.model_validate_json(
        envelope(event_type="OrderCreated", event_version=version, versions=versions, payload={})
    )


V1_ONLY = Dispatcher({order_v1.OrderCreated: apply_v1})
V2_ONLY = Dispatcher({order_v2.OrderCreated: apply_v2})
BOTH = Dispatcher({order_v1.OrderCreated: apply_v1, order_v2.OrderCreated: apply_v2})


@pytest.mark.parametrize(
    ("dispatcher", "v1_copy", "v2_copy"),
    [(V1_ONLY, apply_v1, None), (V2_ONLY, None, apply_v2), (BOTH, None, apply_v2)],
    ids=["v1 only", "v2 only", "both"],
)
def test_of_an_event_published_in_two_versions_the_newest_readable_copy_is_applied(
    dispatcher: Dispatcher, v1_copy: object, v2_copy: object
) -> None:
    assert dispatcher.handler(order_created(1, [1, 2])) is v1_copy
    assert dispatcher.handler(order_created(2, [1, 2])) is v2_copy


def test_an_event_in_a_single_version_goes_to_its_handler() -> None:
    assert BOTH.handler(order_created(1, [])) is apply_v1
    assert BOTH.handler(order_created(2, [])) is apply_v2


def test_an_event_in_no_version_the_service_reads_is_poison() -> None:
    # Say the producer stopped publishing v1 while a consumer still reads only v1.
    with pytest.raises(PoisonMessage, match=r"cannot read OrderCreated version 2.*\[1\]"):
        V1_ONLY.handler(order_created(2, []))


def test_a_future_version_copy_beside_a_readable_one_is_skipped_unread() -> None:
    assert V2_ONLY.handler(order_created(3, [2, 3])) is None


def test_events_the_service_does_not_handle_are_skipped_and_unknown_ones_are_poison() -> None:
    assert V1_ONLY.handler(Envelope.model_validate_json(envelope())) is None
    with pytest.raises(PoisonMessage, match="unknown event Nope"):
        V1_ONLY.handler(Envelope.model_validate_json(envelope(event_type="Nope")))


class TestIdentifiers:
    """What the consumer binds to the log lines of an event, without naming any field."""

    def test_the_ids_of_an_event_are_its_uuid_fields_named_id(self):
        order_id = uuid.uuid4()
        event = order_v1.OrderCreated(
            order_id=order_id,
            customer_id="alice",
            items=[order_v1.OrderLine(sku="A", quantity=1, unit_price_cents=100)],
            total_cents=100,
        )
        # customer_id is a name a client chose, not an id the system minted.
        assert identifiers(event) == {"order_id": str(order_id)}

    def test_an_event_without_ids_has_none(self):
        event = ProductUpdated(sku="A", name="A", unit_price_cents=1, version=1)
        assert identifiers(event) == {}
