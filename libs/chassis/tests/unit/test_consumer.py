"""What the consumer treats as transient or as poison; no I/O."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from chassis.consumer import PoisonMessage, is_transient, parse
from shared_contracts import Envelope
from shared_contracts.inventory.v1 import ProductUpdated


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
