"""`asyncapi.yaml` is valid AsyncAPI 3.0 and says what the code and the expectations say."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import validators

from chassis.contract_testing import load_expectations
from shared_contracts import PAYLOADS, PRODUCERS, Topic

ROOT = Path(__file__).parents[1]
SPEC = Path(__file__).parent / "asyncapi-spec" / "3.0.0.schema.json"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
    return loaded


def spec_violations(document: dict[str, Any]) -> list[str]:
    """What the official AsyncAPI 3.0.0 JSON Schema finds wrong with `document`."""
    spec = json.loads(SPEC.read_text())
    validator = validators.validator_for(spec)(spec)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def refs(node: Any) -> Iterator[str]:
    """Every `$ref` in a parsed document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    target: Any = document
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def test_the_document_is_valid_asyncapi_3(document: dict[str, Any]) -> None:
    assert spec_violations(document) == []


def test_the_official_schema_catches_an_invalid_document(document: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(document))
    broken["operations"]["order.send.orders.events"]["action"] = "publish"  # AsyncAPI 2's verb
    assert spec_violations(broken)


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    for ref in refs(document):
        if ref.startswith("#/"):
            assert resolve(document, ref) is not None, ref
        else:
            assert (ROOT / ref).is_file(), ref


@pytest.mark.parametrize("topic", list(Topic))
def test_each_topic_is_a_channel_sent_by_its_producer_with_its_key(
    document: dict[str, Any], topic: Topic
) -> None:
    channel = document["channels"][topic.value]
    assert channel["address"] == topic.value
    senders = [
        name
        for name, operation in document["operations"].items()
        if operation["action"] == "send" and operation["channel"]["$ref"].endswith(topic.value)
    ]
    assert senders == [f"{PRODUCERS[topic]}.send.{topic.value}"]
    key_format = None if topic is Topic.PRODUCT_EVENTS else "uuid"  # SKU, else the order id
    for ref in channel["messages"].values():
        key = resolve(document, ref["$ref"])["bindings"]["kafka"]["key"]
        assert key.get("format") == key_format, ref


def test_every_event_version_is_a_message_described_by_its_model(
    document: dict[str, Any],
) -> None:
    messages = document["components"]["messages"]
    assert set(messages) == {f"{t}.v{v}" for t, v in PAYLOADS}
    for (event_type, version), model in PAYLOADS.items():
        message = messages[f"{event_type}.v{version}"]
        assert message["name"] == event_type
        assert message["x-event-version"] == version
        assert model.__doc__ is not None
        assert message["summary"] == model.__doc__.split("\n", 1)[0]
        event = message["payload"]["allOf"][1]["properties"]
        assert event["payload"] == {"$ref": f"./schemas/{event_type}.v{version}.json"}


def test_the_consumers_are_the_services_declared_expectations(document: dict[str, Any]) -> None:
    declared = {
        (e.consumer, e.topic, f"#/channels/{e.topic}/messages/{e.event_type}.v{e.event_version}")
        for e in load_expectations(ROOT.parent / "services")
    }
    received = {
        (name.split(".", 1)[0], operation["channel"]["$ref"].removeprefix("#/channels/"), m["$ref"])
        for name, operation in document["operations"].items()
        if operation["action"] == "receive"
        for m in operation["messages"]
    }
    assert received == declared
