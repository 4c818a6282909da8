"""Poison messages on every topic go to its dead-letter topic, and the saga keeps going."""

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from chassis.kafka import create_producer
from chassis.outbox import new_envelope
from devstack.dlq import list_dead_letters
from devstack.invariants import settle
from devstack.scenarios import Scenarios
from shared_contracts import Topic
from shared_contracts.order.v1 import OrderConfirmed

pytestmark = pytest.mark.e2e

# Who consumes each topic, and so who dead-letters what is published on it.
CONSUMERS = {
    Topic.ORDER_EVENTS: {"payment", "inventory"},
    Topic.PAYMENT_EVENTS: {"order"},
    Topic.INVENTORY_EVENTS: {"order"},
    Topic.PRODUCT_EVENTS: {"order"},
}


REASONS = {
    "not JSON": "not an event envelope",
    "wrong shape": "not an event envelope",
    "unknown event type": "unknown event OrderTeleported version 1",
    # Said two ways: "cannot read OrderConfirmed version 99" by a consumer that reads
    # OrderConfirmed in other versions, "unknown event ..." by one that skips the type.
    "future version": "OrderConfirmed version 99",
}


def poisons() -> dict[str, bytes]:
    """One of each kind of message a consumer can never apply."""
    good = new_envelope("poisoner", "k", OrderConfirmed(order_id=uuid.uuid4()))
    return {
        "not JSON": b"\xff\x00 this is not json",
        "wrong shape": json.dumps({"hello": "world"}).encode(),
        "unknown event type": good.model_copy(update={"event_type": "OrderTeleported"})
        .model_dump_json()
        .encode(),
        "future version": good.model_copy(update={"event_version": 99}).model_dump_json().encode(),
    }


async def test_poison_on_every_topic_is_dead_lettered_with_its_reason(stack, client):
    producer: AIOKafkaProducer = create_producer(stack.bootstrap_servers)
    await producer.start()
    keys: dict[str, tuple[Topic, str]] = {}
    try:
        for topic in CONSUMERS:
            for kind, value in poisons().items():
                key = f"poison-{uuid.uuid4().hex[:8]}"
                keys[key] = (topic, kind)
                await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()

    # The partitions move on: a whole saga completes after the poison.
    scenarios = Scenarios(client, tag=f"poison-{uuid.uuid4().hex[:6]}")
    await scenarios.seed()
    [outcome] = await scenarios.happy_path()
    assert outcome.order["status"] == "CONFIRMED"

    async def all_dead_lettered() -> bool:
        found = await dead_letters(stack.bootstrap_servers, keys)
        return all(found[key] == CONSUMERS[topic] for key, (topic, _) in keys.items())

    await client.wait_for(all_dead_lettered, timeout=30, interval=0.5)
    for letters in await asyncio.gather(
        *(list_dead_letters(stack.bootstrap_servers, topic) for topic in CONSUMERS)
    ):
        for letter in letters:
            if letter.key_text in keys:
                topic, kind = keys[letter.key_text]
                assert letter.original_topic == topic
                assert REASONS[kind] in letter.reason, (kind, letter.reason)
    assert (await settle(client)).violations == []


async def dead_letters(bootstrap: str, keys: dict[str, tuple[Topic, str]]) -> dict[str, set[str]]:
    """For each poison key, the consumers that dead-lettered it."""
    found: dict[str, set[str]] = {key: set() for key in keys}
    for topic in CONSUMERS:
        for letter in await list_dead_letters(bootstrap, topic):
            if letter.key_text in found and letter.consumer:
                found[letter.key_text].add(letter.consumer)
    return found
