"""The transactional outbox and its relay, against a real PostgreSQL and a real broker."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import chassis.relay
from chassis.kafka import create_producer
from chassis.outbox import Outbox
from chassis.relay import OutboxRelay
from chassis.tables import outbox as outbox_table
from shared_contracts import Envelope
from shared_contracts.inventory.v1 import ProductUpdated

from ..support import in_background, wait_until

pytestmark = pytest.mark.integration

Sessions = async_sessionmaker[AsyncSession]
NewTopic = Callable[[], Awaitable[str]]


def product(key: str, n: int) -> ProductUpdated:
    return ProductUpdated(sku=key, name=f"product {n}", unit_price_cents=n, version=n + 1)


async def outbox_rows(sessions: Sessions) -> int:
    async with sessions() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(outbox_table)) or 0)


def envelopes(records: list[Any]) -> list[Envelope]:
    return [Envelope.model_validate_json(record.value) for record in records]


async def test_committed_events_are_published_in_order_per_key_and_deleted(
    sessions: Sessions, producer: AIOKafkaProducer, new_topic: NewTopic, read_topic: Any
) -> None:
    topic = await new_topic()
    signal = Outbox("chassis-test")
    keys = ["sku-a", "sku-b", "sku-c"]
    written: dict[str, list[uuid.UUID]] = {key: [] for key in keys}
    # 50 events in 5 transactions, the keys interleaved.
    for start in range(0, 50, 10):
        async with sessions.begin() as session:
            for n in range(start, min(start + 10, 50)):
                key = keys[n % len(keys)]
                envelope = await signal.add(session, topic, key, product(key, n))
                written[key].append(envelope.event_id)
    assert await outbox_rows(sessions) == 50

    async with in_background(OutboxRelay(sessions, producer, signal).run()) as task:
        records = await read_topic(topic, at_least=50)
        await wait_until(lambda: _empty(sessions), watch=task)

    assert len(records) == 50, "every event is published exactly once by a healthy relay"
    for key in keys:
        mine = [record for record in records if record.key == key.encode()]
        assert len({record.partition for record in mine}) == 1, "one key, one partition"
        published = envelopes(mine)
        assert [e.event_id for e in published] == written[key], f"order of {key}"
        assert {(e.event_type, e.event_version, e.producer, e.aggregate_id) for e in published} == {
            ("ProductUpdated", 1, "chassis-test", key)
        }
    assert await outbox_rows(sessions) == 0


async def _empty(sessions: Sessions) -> bool:
    return await outbox_rows(sessions) == 0


async def test_rolled_back_events_are_never_published(
    sessions: Sessions, producer: AIOKafkaProducer, new_topic: NewTopic, read_topic: Any
) -> None:
    topic = await new_topic()
    signal = Outbox("chassis-test")
    rolled_back: list[uuid.UUID] = []

    # An explicit rollback...
    async with sessions() as session:
        await session.begin()
        rolled_back.append((await signal.add(session, topic, "k", product("k", 1))).event_id)
        await session.rollback()
    # ...and an exception inside the transaction block.
    with pytest.raises(RuntimeError, match="business rule"):
        async with sessions.begin() as session:
            rolled_back.append((await signal.add(session, topic, "k", product("k", 2))).event_id)
            raise RuntimeError("business rule broken after the event was added")
    assert not signal.committed.is_set(), "a rollback does not wake the relay"
    assert await outbox_rows(sessions) == 0

    async with sessions.begin() as session:
        marker = await signal.add(session, topic, "k", product("k", 3))
    assert signal.committed.is_set()

    async with in_background(OutboxRelay(sessions, producer, signal).run()):
        records = await read_topic(topic, at_least=1)
    assert [e.event_id for e in envelopes(records)] == [marker.event_id]
    assert not set(rolled_back) & {e.event_id for e in envelopes(records)}


async def test_commit_without_events_does_not_wake_the_relay(sessions: Sessions) -> None:
    signal = Outbox("chassis-test")
    async with sessions.begin() as session:
        await session.execute(
            sa.text("INSERT INTO applied (event_id, n) VALUES (:e, 1)"), {"e": uuid.uuid4()}
        )
    assert not signal.committed.is_set()


class CountingRelay(OutboxRelay):
    """Counts its attempts at a batch and records what each successful one sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0
        self.batches: list[int] = []

    async def publish_batch(self) -> int:
        self.calls += 1
        sent = await super().publish_batch()
        self.batches.append(sent)
        return sent


async def test_a_commit_wakes_the_idle_relay(
    sessions: Sessions,
    producer: AIOKafkaProducer,
    new_topic: NewTopic,
    read_topic: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With a poll interval far longer than the test, only the commit's signal can
    # make the relay look at the outbox again.
    monkeypatch.setattr(chassis.relay, "_IDLE_POLL_SECONDS", 600.0)
    topic = await new_topic()
    signal = Outbox("chassis-test")
    relay = CountingRelay(sessions, producer, signal)

    async def idle() -> bool:
        return relay.batches == [0]

    async with in_background(relay.run()) as task:
        await wait_until(idle, watch=task)  # found nothing; now waits for a signal
        async with sessions.begin() as session:
            event = await signal.add(session, topic, "k", product("k", 1))
        records = await read_topic(topic, at_least=1)

        async def cleared() -> bool:
            return not signal.committed.is_set() and len(relay.batches) == 2

        await wait_until(cleared, watch=task)
    assert [e.event_id for e in envelopes(records)] == [event.event_id]
    assert relay.batches == [0, 1], "one empty batch, then one sent at the commit's signal"
    assert await outbox_rows(sessions) == 0


class CrashingProducer:
    """Delivers the first `healthy` messages (waiting for their acks), then fails every send."""

    def __init__(self, real: AIOKafkaProducer, healthy: int) -> None:
        self._real = real
        self._healthy = healthy
        self.sends = 0

    async def send(self, topic: str, value: bytes, key: bytes) -> "asyncio.Future[Any]":
        self.sends += 1
        if self.sends > self._healthy:
            raise KafkaConnectionError("broker went away")
        ack = await self._real.send(topic, value, key=key)
        await ack
        return ack


async def test_a_failed_batch_stays_in_the_outbox_and_is_published_later(
    sessions: Sessions,
    producer: AIOKafkaProducer,
    broker: str,
    new_topic: NewTopic,
    read_topic: Any,
) -> None:
    topic = await new_topic()
    signal = Outbox("chassis-test")
    ids: list[uuid.UUID] = []
    async with sessions.begin() as session:
        for n in range(10):
            ids.append((await signal.add(session, topic, "k", product("k", n))).event_id)

    # A relay whose broker connection breaks after 3 messages of the batch.
    crashing = CrashingProducer(producer, healthy=3)
    with pytest.raises(KafkaConnectionError):
        await OutboxRelay(sessions, crashing, signal).publish_batch()
    assert await outbox_rows(sessions) == 10, "nothing is deleted when a send fails"

    # A stopped producer: the relay's loop keeps retrying and deletes nothing.
    stopped = create_producer(broker)
    await stopped.start()
    await stopped.stop()
    failing = CountingRelay(sessions, stopped, signal)

    async def retried() -> bool:
        return failing.calls >= 3

    async with in_background(failing.run()) as task:
        await wait_until(retried, watch=task)
    assert failing.batches == [], "no batch succeeded"
    assert await outbox_rows(sessions) == 10

    # A healthy relay publishes everything: at least once, the first 3 twice.
    async with in_background(OutboxRelay(sessions, producer, signal).run()) as task:
        records = await read_topic(topic, at_least=13)
        await wait_until(lambda: _empty(sessions), watch=task)
    assert [e.event_id for e in envelopes(records)] == ids[:3] + ids
