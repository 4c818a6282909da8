from types import ModuleType

import shared_contracts


def test_committed_contracts_match_the_models(generate_schemas: ModuleType) -> None:
    expected: dict[str, str] = generate_schemas.render()
    root = generate_schemas.ROOT
    committed = {
        f"schemas/{p.name}": p.read_text() for p in generate_schemas.SCHEMA_DIR.glob("*.json")
    }
    committed["asyncapi.yaml"] = generate_schemas.ASYNCAPI.read_text()
    drifted = sorted(
        name
        for name in expected.keys() | committed.keys()
        if expected.get(name) != committed.get(name)
    )
    assert not drifted, (
        f"{drifted} in {root} drifted from the models or the consumers' expectations: run `make contracts`"
    )


def test_exported_members_are_pinned() -> None:
    assert shared_contracts.__all__ == [
        "ALL_TOPICS",
        "EVENTS_BY_TOPIC",
        "PAYLOADS",
        "PRODUCERS",
        "Envelope",
        "Topic",
        "event_key",
    ]


def test_every_topic_has_a_dead_letter_twin() -> None:
    assert "orders.events.dlq" in shared_contracts.ALL_TOPICS
    assert len(shared_contracts.ALL_TOPICS) == 2 * len(shared_contracts.Topic)


def test_readers_ignore_unknown_fields() -> None:
    from shared_contracts.order.v1 import OrderConfirmed

    event = OrderConfirmed.model_validate(
        {"order_id": "5f0b4c1e-0000-4000-8000-000000000000", "added_later": 1}
    )
    assert str(event.order_id).startswith("5f0b4c1e")
