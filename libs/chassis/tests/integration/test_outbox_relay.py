"""The transactional outbox and its relay, against a real PostgreSQL and a real broker."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, UnknownError
from aiokafka.partitioner import DefaultPartitioner
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import chassis.relay
from chassis import telemetry
from chassis.kafka import create_producer
from chassis.outbox import Outbox
from chassis.relay import OutboxRelay, PartitionsChanged
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


async def test_a_transactions_events_are_written_by_one_insert_as_it_commits(
    sessions: Sessions,
) -> None:
    signal = Outbox("chassis-test")
    inserts: list[str] = []
    engine = sessions.kw["bind"].sync_engine

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("INSERT INTO outbox"):
            inserts.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        async with sessions.begin() as session:
            added = [await signal.add(session, "t", f"k{n}", product(f"k{n}", n)) for n in range(5)]
            assert await outbox_rows(sessions) == 0, "nothing is written before the commit"
            assert inserts == []
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)

    assert len(inserts) == 1
    async with sessions() as session:
        rows = await session.execute(sa.select(outbox_table.c.event_id).order_by(outbox_table.c.id))
        assert list(rows.scalars()) == [e.event_id for e in added], "in the order added"


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


class AckLosingProducer:
    """Delivers every batch, then reports it failed: the connection dropped before the ack."""

    def __init__(self, real: AIOKafkaProducer) -> None:
        self._real = real

    async def partitions_for(self, topic: str) -> set[int]:
        return set(await self._real.partitions_for(topic))

    def create_batch(self) -> Any:
        return self._real.create_batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> "asyncio.Future[Any]":
        await (await self._real.send_batch(batch, topic, partition=partition))
        failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failed.set_exception(KafkaConnectionError("broker went away"))
        return failed


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

    # The batch reaches the broker but its ack is lost.
    with pytest.raises(KafkaConnectionError):
        await OutboxRelay(sessions, AckLosingProducer(producer), signal).publish_batch()
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

    # A healthy relay publishes everything again: at least once, in order.
    async with in_background(OutboxRelay(sessions, producer, signal).run()) as task:
        records = await read_topic(topic, at_least=20)
        await wait_until(lambda: _empty(sessions), watch=task)
    assert [e.event_id for e in envelopes(records)] == ids + ids


class OnePartitionFails:
    """Fails (without delivering) every batch for `partition`; delivers the others."""

    def __init__(self, real: AIOKafkaProducer, partition: int) -> None:
        self._real = real
        self._partition = partition
        self.client = real.client

    async def partitions_for(self, topic: str) -> set[int]:
        return set(await self._real.partitions_for(topic))

    def create_batch(self) -> Any:
        return self._real.create_batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> "asyncio.Future[Any]":
        if partition != self._partition:
            return await self._real.send_batch(batch, topic, partition=partition)
        failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        failed.set_exception(UnknownError("the broker refused the batch"))
        return failed


async def test_a_failed_partition_keeps_its_rows_and_the_others_are_deleted(
    sessions: Sessions, producer: AIOKafkaProducer, new_topic: NewTopic, read_topic: Any
) -> None:
    topic = await new_topic()
    signal = Outbox("chassis-test")
    keys = [f"sku-{n}" for n in range(12)]
    written: dict[str, list[uuid.UUID]] = {key: [] for key in keys}
    async with sessions.begin() as session:
        for n in range(36):
            key = keys[n % len(keys)]
            written[key].append((await signal.add(session, topic, key, product(key, n))).event_id)
    first = (await producer.send_and_wait(topic, b"probe", key=keys[0].encode())).partition

    with pytest.raises(UnknownError):
        await OutboxRelay(sessions, OnePartitionFails(producer, first), signal).publish_batch()
    async with sessions() as session:
        left = set((await session.execute(sa.select(outbox_table.c.key))).scalars())
    assert keys[0] in left, "the failed partition's rows stay"
    assert len(left) < len(keys), "the other partitions' rows are deleted"

    async with in_background(OutboxRelay(sessions, producer, signal).run()) as task:
        records = await read_topic(topic, at_least=37)
        await wait_until(lambda: _empty(sessions), watch=task)
    events = [record for record in records if record.value != b"probe"]
    assert len(events) == 36, "each event published once"
    for key in keys:
        mine = envelopes([record for record in events if record.key == key.encode()])
        assert [e.event_id for e in mine] == written[key], f"order of {key}"


async def test_a_round_sends_at_most_one_batch_per_partition(
    sessions: Sessions, broker: str, new_topic: NewTopic, read_topic: Any
) -> None:
    topic = await new_topic()
    signal = Outbox("chassis-test")
    async with sessions.begin() as session:
        ids = [(await signal.add(session, topic, "k", product("k", n))).event_id for n in range(10)]
    # Batches of about two events: one key's ten events need several rounds.
    small = AIOKafkaProducer(bootstrap_servers=broker, max_batch_size=1024)
    await small.start()
    try:
        relay = OutboxRelay(sessions, small, signal)
        rounds = []
        while await outbox_rows(sessions):
            rounds.append(await relay.publish_batch())
    finally:
        await small.stop()
    assert len(rounds) > 2 and sum(rounds) == 10, rounds
    records = await read_topic(topic, at_least=10)
    assert [e.event_id for e in envelopes(records)] == ids


class RecreatedTopic:
    """A real producer whose topic seems to shrink to 3 partitions once a batch is acked.

    This is what a restarted in-memory broker does: it auto-creates a topic with its
    default partition count before the topic is re-created as it was.
    """

    def __init__(self, real: AIOKafkaProducer) -> None:
        self._real = real
        self.client = real.client
        self.shrunk = False

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2} if self.shrunk else set(await self._real.partitions_for(topic))

    def create_batch(self) -> Any:
        return self._real.create_batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> "asyncio.Future[Any]":
        ack = await self._real.send_batch(batch, topic, partition=partition)
        self.shrunk = True
        return ack


async def test_batches_acked_while_the_partitions_changed_are_sent_again(
    sessions: Sessions, producer: AIOKafkaProducer, new_topic: NewTopic, read_topic: Any
) -> None:
    topic = await new_topic()
    signal = Outbox("chassis-test")
    keys = [f"sku-{n}" for n in range(12)]
    async with sessions.begin() as session:
        for n, key in enumerate(keys):
            await signal.add(session, topic, key, product(key, n))
    recreated = RecreatedTopic(producer)
    relay = OutboxRelay(sessions, recreated, signal)

    with pytest.raises(PartitionsChanged):
        await relay.publish_batch()
    assert await outbox_rows(sessions) == 12, "acks under the old partitions do not count"
    assert await relay.publish_batch() == 12
    records = await read_topic(topic, at_least=24)
    assert len(records) == 24, "sent under the old partitions, then again under the new"
    for key in keys:
        now = DefaultPartitioner()(key.encode(), [0, 1, 2], [0, 1, 2])
        assert now in {record.partition for record in records if record.key == key.encode()}


async def test_the_trace_context_of_the_writer_travels_with_the_event(
    sessions: Sessions, producer: AIOKafkaProducer, new_topic: NewTopic, read_topic: Any
) -> None:
    """The relay publishes later, in another task: the row carries the writer's trace."""
    topic = await new_topic()
    signal = Outbox("chassis-test")
    writer = SpanContext(
        trace_id=uuid.uuid4().int, span_id=0x1234, is_remote=True, trace_flags=TraceFlags(1)
    )
    with trace.use_span(NonRecordingSpan(writer)):
        async with sessions.begin() as session:
            await signal.add(session, topic, "sku-t", product("sku-t", 1))
    untraced = Outbox("chassis-test")
    async with sessions.begin() as session:
        await untraced.add(session, topic, "sku-u", product("sku-u", 2))

    assert await OutboxRelay(sessions, producer, signal).publish_batch() == 2
    records = {record.key: record for record in await read_topic(topic, at_least=2)}

    carried = telemetry.context_of_record(records[b"sku-t"].headers)
    published = trace.get_current_span(carried).get_span_context()
    assert (published.trace_id, published.span_id) == (writer.trace_id, writer.span_id)
    assert records[b"sku-u"].headers == ()  # no trace, no headers
