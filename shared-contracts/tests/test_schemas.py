import importlib.util
from pathlib import Path

import shared_contracts

_spec = importlib.util.spec_from_file_location(
    "generate_schemas", Path(__file__).parents[1] / "generate_schemas.py"
)
assert _spec and _spec.loader
generate_schemas = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate_schemas)


def test_committed_schemas_match_the_models() -> None:
    expected = generate_schemas.render()
    committed = {p.name: p.read_text() for p in generate_schemas.SCHEMA_DIR.glob("*.json")}
    assert committed == expected, "schemas drifted from the models: run `make contracts`"


def test_exported_members_are_pinned() -> None:
    assert shared_contracts.__all__ == [
        "ALL_TOPICS",
        "EVENTS_BY_TOPIC",
        "PAYLOADS",
        "Envelope",
        "Topic",
    ]


def test_every_topic_has_a_dead_letter_twin() -> None:
    assert "orders.events.dlq" in shared_contracts.ALL_TOPICS
    assert len(shared_contracts.ALL_TOPICS) == 8


def test_readers_ignore_unknown_fields() -> None:
    from shared_contracts.order.v1 import OrderConfirmed

    event = OrderConfirmed.model_validate(
        {"order_id": "5f0b4c1e-0000-4000-8000-000000000000", "added_later": 1}
    )
    assert str(event.order_id).startswith("5f0b4c1e")
