"""The idempotent consumer, against a real PostgreSQL and a real broker.

Joining a consumer group on the local broker takes a few seconds, and a new member
of a group that had one waits for the old member's session to time out, so these
tests start as few consumers as they can.
"""

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import trace
from prometheus_client import REGISTRY
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.consumer import Delivery, Handler, Handlers, InboxConsumer, Prefetch
from chassis.outbox import Outbox, new_envelope, new_envelopes
from chassis.tables import outbox as outbox_table
from chassis.tables import processed_events
from shared_contracts import Envelope, event_key
from shared_contracts.inventory.v1 import ProductUpdated
from shared_contracts.order import v1 as order_v1
from shared_contracts.order import v2 as order_v2

from ..support import count, in_background, wait_until

pytestmark = pytest.mark.integration

Sessions = async_sessionmaker[AsyncSession]
NewTopic = Callable[[], Awaitable[str]]
PARTITIONS = 6


def envelope_of(event: ProductUpdated, **overrides: Any) -> Envelope:
    return new_envelope("chassis-test", event.sku, event).model_copy(update=overrides)


def product(sku: str, n: int, name: str = "ok") -> ProductUpdated:
    return ProductUpdated(sku=sku, name=name, unit_price_cents=n, version=n + 1)


def encoded(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode()


def recorder(calls: list[uuid.UUID]) -> Handler:
    """A handler that records each call and writes one `applied` row in the delivery's tx."""

    async def apply(delivery: Delivery, payload: BaseModel) -> None:
        calls.append(delivery.envelope.event_id)
        await delivery.session.execute(
            sa.text("INSERT INTO applied (event_id, n) VALUES (:event_id, :n)"),
            {"event_id": delivery.envelope.event_id, "n": getattr(payload, "unit_price_cents", 0)},
        )

    return apply


def metric(name: str, topic: str) -> float:
    return REGISTRY.get_sample_value(name, {"topic": topic}) or 0.0


@contextlib.asynccontextmanager
async def consuming(consumer: InboxConsumer) -> AsyncIterator[asyncio.Task[None]]:
    """Run `consumer` in the background for the duration of the block, then stop it as a
    service does: the events in hand are finished and committed, not rolled back."""
    async with in_background(consumer.run()) as task:
        try:
            yield task
        finally:
            consumer.stop()
            await asyncio.wait({task}, timeout=10)  # then in_background cancels it
    assert not consumer.connected


def new_consumer(
    broker: str,
    topic: str,
    sessions: Sessions,
    producer: AIOKafkaProducer,
    handler: Handler | None = None,
    group: str | None = None,
    max_attempts: int = 5,
    handlers: Handlers | None = None,
    prefetch: Prefetch | None = None,
) -> InboxConsumer:
    """A consumer of `topic` applying ProductUpdated with `handler`, or `handlers`."""
    if handlers is None:
        assert handler is not None
        handlers = {ProductUpdated: handler}
    return InboxConsumer(
        name=group or f"chassis-test-{uuid.uuid4().hex[:8]}",
        bootstrap_servers=broker,
        topics=[topic],
        handlers=handlers,
        sessions=sessions,
        outbox=Outbox("chassis-test"),
        producer=lambda: producer,
        max_attempts=max_attempts,
        prefetch=prefetch,
    )


async def committed_offsets(broker: str, group: str, topic: str) -> int:
    """The sum over the topic's partitions of the offsets `group` has committed."""
    checker = AIOKafkaConsumer(bootstrap_servers=broker, group_id=group, enable_auto_commit=False)
    await checker.start()
    try:
        offsets = [await checker.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)]
    finally:
        await checker.stop()
    return sum(offset or 0 for offset in offsets)


async def test_a_redelivered_event_is_applied_once(
    broker: str,
    sessions: Sessions,
    producer: AIOKafkaProducer,
    new_topic: NewTopic,
) -> None:
    topic = await new_topic()
    event = envelope_of(product("sku-1", 7))
    for _ in range(2):  # the same envelope twice, as a relay that crashed before its delete
        await producer.send_and_wait(topic, encoded(event), key=b"sku-1")
    calls: list[uuid.UUID] = []
    consumer = new_consumer(broker, topic, sessions, producer, recorder(calls))

    async def skipped_one() -> bool:
        return metric("events_duplicate_total", topic) == 1

    async with consuming(consumer) as task:
        await wait_until(skipped_one, watch=task)

    assert calls == [event.event_id]
    assert await count(sessions, "applied") == 1
    async with sessions() as session:
        inbox = (await session.execute(sa.select(processed_events))).all()
    assert [(row.consumer, row.event_id) for row in inbox] == [(consumer.name, event.event_id)]
    assert (
        REGISTRY.get_sample_value(
            "events_consumed_total", {"topic": topic, "event_type": "ProductUpdated"}
        )
        == 1
    )


async def test_the_events_of_a_fetch_are_applied_in_one_transaction_in_order(
    broker: str,
    sessions: Sessions,
    producer: AIOKafkaProducer,
    new_topic: NewTopic,
) -> None:
    """And the prefetch gets the payloads of each transaction's events before their
    handlers run, in their order, a redelivered event left out."""
    topic = await new_topic()
    # Five keys, interleaved: records of several partitions, each key's in this order.
    events = [envelope_of(product(f"sku-{n % 5}", n)) for n in range(20)]
    sent = [
        await producer.send(topic, encoded(event), key=event.aggregate_id.encode())
        for event in [*events, events[3]]
    ]
    assert len({metadata.partition for metadata in await asyncio.gather(*sent)}) > 1
    applied: list[tuple[str, int, int]] = []
    prefetched: dict[int, list[tuple[str, int]]] = {}

    async def txid(session: AsyncSession) -> int:
        return int(await session.scalar(sa.text("SELECT txid_current()")) or 0)

    async def prefetch(session: AsyncSession, payloads: Any) -> None:
        assert await txid(session) not in {tx for _, _, tx in applied}, "before the handlers"
        prefetched[await txid(session)] = [(p.sku, p.version) for p in payloads]

    async def note_transaction(delivery: Delivery, payload: ProductUpdated) -> None:
        applied.append((payload.sku, payload.version, await txid(delivery.session)))

    consumer = new_consumer(broker, topic, sessions, producer, note_transaction, prefetch=prefetch)

    async def all_applied() -> bool:
        return len(applied) == len(events) and metric("events_duplicate_total", topic) == 1

    async with consuming(consumer) as task:
        await wait_until(all_applied, watch=task)

    for key in range(5):
        versions = [version for sku, version, _ in applied if sku == f"sku-{key}"]
        assert versions == list(range(key + 1, 21, 5)), "each key's events in order"
    transactions = {txid for _, _, txid in applied}
    # Published before the consumer started, they arrive in a fetch or two, and one
    # transaction applies a fetch, whatever partitions its records are in.
    assert len(transactions) <= 2, transactions
    assert await count(sessions, "processed_events") == len(events)
    assert prefetched == {
        tx: [(sku, version) for sku, version, t in applied if t == tx] for tx in transactions
    }


async def test_handle_applies_one_record_alone(sessions: Sessions, producer: AIOKafkaProducer):
    """The one-record form of chassis 0.2.0: the record applied in a transaction of its own."""
    event = envelope_of(product("sku-alone", 4))
    record = ConsumerRecord(
        topic="products.alone",
        partition=0,
        offset=0,
        timestamp=0,
        timestamp_type=0,
        key=b"sku-alone",
        value=encoded(event),
        checksum=None,
        serialized_key_size=9,
        serialized_value_size=len(encoded(event)),
        headers=[],
    )
    calls: list[uuid.UUID] = []
    consumer = new_consumer("unused:9092", record.topic, sessions, producer, recorder(calls))

    await consumer.handle(record)
    await consumer.handle(record)

    assert calls == [event.event_id], "applied once, then skipped as a redelivery"
    assert await count(sessions, "applied") == 1


async def test_events_redelivered_after_a_crash_before_the_offset_commit_are_skipped(
    broker: str,
    sessions: Sessions,
    producer: AIOKafkaProducer,
    new_topic: NewTopic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = await new_topic()
    group = f"chassis-test-{uuid.uuid4().hex[:8]}"
    events = [envelope_of(product(f"sku-{n % 3}", n)) for n in range(6)]
    for event in events:
        await producer.send_and_wait(topic, encoded(event), key=event.aggregate_id.encode())

    # First consumer: applies and commits every event to the database, then "crashes"
    # where it would commit the offsets.
    first_calls: list[uuid.UUID] = []
    first = new_consumer(broker, topic, sessions, producer, recorder(first_calls), group)
    skipped: dict[Any, int] = {}

    async def crash_instead_of_commit(_consumer: Any, offsets: dict[Any, int]) -> None:
        skipped.update(offsets)

    monkeypatch.setattr(first, "_commit", crash_instead_of_commit)

    async def at_offset_commit() -> bool:
        return sum(skipped.values()) == len(events)

    async with consuming(first) as task:
        await wait_until(at_offset_commit, watch=task)
    assert sorted(first_calls) == sorted(e.event_id for e in events)
    assert await count(sessions, "applied") == len(events)
    assert await committed_offsets(broker, group, topic) == 0

    # A new member of the same group gets the same events again; the inbox skips them.
    second_calls: list[uuid.UUID] = []
    second = new_consumer(broker, topic, sessions, producer, recorder(second_calls), group)
    received: list[uuid.UUID] = []
    handle = second._handle_fetch

    async def receive(batches: Any, applied: Any, abandoned: Any) -> None:
        for records in batches.values():
            received.extend(Envelope.model_validate_json(r.value).event_id for r in records)
        await handle(batches, applied, abandoned)

    monkeypatch.setattr(second, "_handle_fetch", receive)

    async def offsets_committed() -> bool:
        return await committed_offsets(broker, group, topic) == len(events)

    async with consuming(second) as task:
        await wait_until(offsets_committed, timeout=60, watch=task)

    assert sorted(received) == sorted(e.event_id for e in events), "all redelivered"
    assert second_calls == [], "no handler ran again"
    assert metric("events_duplicate_total", topic) == len(events)
    assert await count(sessions, "applied") == len(events)
    assert await count(sessions, "processed_events") == len(events)


async def test_poison_messages_go_to_the_dlq_and_the_partition_moves_on(
    broker: str,
    sessions: Sessions,
    producer: AIOKafkaProducer,
    new_topic: NewTopic,
    read_topic: Any,
) -> None:
    topic = await new_topic()
    payload = product("sku-p", 1)
    poison: list[tuple[bytes | None, str]] = [
        (b"\x00\xff this is not JSON", "not an event envelope"),
        (b'{"hello": "world", "items": [1, 2]}', "not an event envelope"),
        (encoded(envelope_of(payload, event_type="NoSuchEvent")), "unknown event NoSuchEvent"),
        (
            encoded(envelope_of(payload, event_version=99)),
            "cannot read ProductUpdated version 99: this consumer reads versions [1]",
        ),
        (
            encoded(envelope_of(payload, payload={"sku": "sku-p", "unit_price_cents": -1})),
            "invalid ProductUpdated payload",
        ),
        (None, "message has no value"),  # a tombstone (key, no value)
    ]
    sent: list[tuple[bytes | None, bytes | None, int, int]] = []  # key, value, partition, offset
    for value, _ in poison:
        metadata = await producer.send_and_wait(topic, value, key=b"sku-p")
        sent.append((b"sku-p", value, metadata.partition, metadata.offset))
    # A record with neither key nor value, which `send()` refuses but other clients write;
    # it cannot be dead-lettered as it is, so its DLQ copy has an empty value.
    batch = producer.create_batch()
    batch.append(key=None, value=None, timestamp=None)
    metadata = await (await producer.send_batch(batch, topic, partition=sent[0][2]))
    sent.append((None, b"", metadata.partition, metadata.offset))
    poison.append((None, "message has no value"))
    good = envelope_of(payload)
    await producer.send_and_wait(topic, encoded(good), key=b"sku-p")

    calls: list[uuid.UUID] = []
    consumer = new_consumer(broker, topic, sessions, producer, recorder(calls))

    async def good_applied() -> bool:
        return await count(sessions, "applied") == 1

    async with consuming(consumer) as task:
        await wait_until(good_applied, watch=task)

    assert calls == [good.event_id]
    assert await count(sessions, "processed_events") == 1
    dead = await read_topic(f"{topic}.dlq", at_least=len(poison))
    assert len(dead) == len(poison)
    # Without a key the last copy may land on any DLQ partition: restore the source order.
    dead.sort(key=lambda record: int(dict(record.headers)["dlq.offset"]))
    for record, (_, reason), (key, value, partition, offset) in zip(
        dead, poison, sent, strict=True
    ):
        headers = {name: header.decode() for name, header in record.headers}
        assert (record.key, record.value) == (key, value)
        assert headers["dlq.error"] == "PoisonMessage"
        assert reason in headers["dlq.reason"]
        assert headers["dlq.topic"] == topic
        assert headers["dlq.consumer"] == consumer.name
        assert headers["dlq.partition"] == str(partition)
        assert headers["dlq.offset"] == str(offset)
    assert metric("events_dead_lettered_total", topic) == len(poison)


async def test_failing_handlers_are_retried_then_dead_lettered(
    broker: str,
    sessions: Sessions,
    producer: AIOKafkaProducer,
    new_topic: NewTopic,
    read_topic: Any,
) -> None:
    topic = await new_topic()
    attempts: Counter[str] = Counter()
    calls: list[uuid.UUID] = []
    apply = recorder(calls)

    async def handler(delivery: Delivery, payload: ProductUpdated) -> None:
        attempts[payload.name] += 1
        await apply(delivery, payload)  # rolled back below if the attempt fails
        if payload.name == "broken":
            raise ValueError("cannot apply this one, ever")
        if payload.name == "flaky" and attempts["flaky"] <= 2:
            raise ValueError("not this time")
        if payload.name == "transient" and attempts["transient"] <= 4:
            raise ConnectionRefusedError("the database is restarting")

    names = ["broken", "flaky", "transient", "ok"]
    events = {name: envelope_of(product("sku-r", n, name)) for n, name in enumerate(names)}
    for event in events.values():
        await producer.send_and_wait(topic, encoded(event), key=b"sku-r")
    consumer = new_consumer(broker, topic, sessions, producer, handler, max_attempts=3)

    async def last_applied() -> bool:
        return events["ok"].event_id in calls

    async with consuming(consumer) as task:
        await wait_until(last_applied, watch=task)

    # max_attempts=3 non-transient failures dead-letter; transient ones retry without limit.
    assert attempts == {"broken": 3, "flaky": 3, "transient": 5, "ok": 1}
    async with sessions() as session:
        applied = set((await session.execute(sa.text("SELECT event_id FROM applied"))).scalars())
        inbox = set((await session.execute(sa.select(processed_events.c.event_id))).scalars())
    expected = {events[name].event_id for name in ("flaky", "transient", "ok")}
    assert applied == expected
    assert inbox == expected
    assert await count(sessions, "applied") == 3, "each applied exactly once"

    dead = await read_topic(f"{topic}.dlq")
    assert len(dead) == 1
    assert dead[0].value == encoded(events["broken"])
    headers = {name: value.decode() for name, value in dead[0].headers}
    assert headers["dlq.error"] == "ValueError"
    assert headers["dlq.reason"] == "cannot apply this one, ever"
    assert headers["dlq.topic"] == topic
    assert metric("events_dead_lettered_total", topic) == 1
    assert metric("events_retried_total", topic) == 2 + 2 + 4


async def test_an_offset_commit_for_a_partition_no_longer_assigned_is_not_fatal(
    broker: str, new_topic: NewTopic
) -> None:
    # After a rebalance that happened while a batch was being applied, the batch's
    # partition may belong to another member: committing it must not stop the loop.
    topic = await new_topic()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker,
        group_id=f"chassis-test-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
    )
    consumer.assign([TopicPartition(topic, 0)])
    await consumer.start()
    try:
        await InboxConsumer._commit(consumer, {TopicPartition(topic, 1): 1})
    finally:
        await consumer.stop()


async def test_the_consumer_reconnects_after_its_client_fails(
    broker: str,
    sessions: Sessions,
    producer: AIOKafkaProducer,
    new_topic: NewTopic,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = await new_topic()
    event = envelope_of(product("sku-f", 3))
    await producer.send_and_wait(topic, encoded(event), key=b"sku-f")
    real_getmany = AIOKafkaConsumer.getmany
    failures = 0

    async def fails_once(self: AIOKafkaConsumer, *args: Any, **kwargs: Any) -> Any:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise KafkaError("fetch failed")
        return await real_getmany(self, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", fails_once)
    calls: list[uuid.UUID] = []
    consumer = new_consumer(broker, topic, sessions, producer, recorder(calls))

    async def applied_once() -> bool:
        return await count(sessions, "applied") == 1

    async with consuming(consumer) as task:
        await wait_until(applied_once, timeout=60, watch=task)
    assert (failures, calls) == (1, [event.event_id])


async def test_stop_finishes_the_events_in_hand_and_commits_what_was_applied(
    broker: str,
    sessions: Sessions,
    producer: AIOKafkaProducer,
    new_topic: NewTopic,
) -> None:
    topic = await new_topic()
    for n in range(10):  # one key: one partition, applied in order
        await producer.send_and_wait(topic, encoded(envelope_of(product("sku-s", n))), key=b"sku-s")
    calls: list[uuid.UUID] = []
    record = recorder(calls)

    async def slow(delivery: Delivery, payload: ProductUpdated) -> None:
        await record(delivery, payload)
        await asyncio.sleep(0.2)

    group = f"chassis-test-{uuid.uuid4().hex[:8]}"
    consumer = new_consumer(broker, topic, sessions, producer, slow, group=group)
    task = asyncio.create_task(consumer.run())

    async def two_applied() -> bool:
        return len(calls) >= 2

    await wait_until(two_applied, watch=task)
    consumer.stop()
    await asyncio.wait_for(task, timeout=3)  # returns by itself, no cancellation

    # The batch in hand (likely all ten, fetched at once) is finished, not cut short.
    assert 2 <= len(calls) <= 10
    assert await count(sessions, "applied") == len(calls)
    assert await committed_offsets(broker, group, topic) == len(calls)


async def test_members_of_a_group_share_the_partitions_and_a_rebalance_repeats_nothing(
    broker: str,
    sessions: Sessions,
    producer: AIOKafkaProducer,
    new_topic: NewTopic,
) -> None:
    topic = await new_topic()
    events = [envelope_of(product(f"sku-{n}", n)) for n in range(120)]  # keys on every partition

    async def send(wave: list[Envelope]) -> None:
        sent = [
            await producer.send(topic, encoded(event), key=event.aggregate_id.encode())
            for event in wave
        ]
        await asyncio.gather(*sent)

    calls: dict[str, list[uuid.UUID]] = {"first": [], "second": []}

    def slow(member: str) -> Handler:
        record = recorder(calls[member])

        async def apply(delivery: Delivery, payload: ProductUpdated) -> None:
            await record(delivery, payload)
            await asyncio.sleep(0.03)  # the first member is mid-fetch when the second joins

        return apply

    group = f"chassis-test-{uuid.uuid4().hex[:8]}"
    first = new_consumer(broker, topic, sessions, producer, slow("first"), group)
    second = new_consumer(broker, topic, sessions, producer, slow("second"), group)

    async def first_busy() -> bool:
        return len(calls["first"]) >= 10

    def committed(n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await committed_offsets(broker, group, topic) == n

        return check

    await send(events[:60])  # a fetch that takes the first member about 2 s to apply
    async with consuming(first) as first_task:
        await wait_until(first_busy, watch=first_task)
        assert metric("consumer_assigned_partitions", topic) == PARTITIONS
        async with consuming(second) as second_task:
            # The revocation waits for the fetch in hand and commits it.
            await wait_until(committed(60), timeout=60, watch=second_task)
            await send(events[60:])  # now shared by the two members
            await wait_until(committed(len(events)), timeout=60, watch=second_task)

    assert calls["first"] and calls["second"], "both members applied events"
    applied = calls["first"] + calls["second"]
    assert sorted(applied) == sorted(e.event_id for e in events), "each applied once"
    # The first member committed what it had applied before letting its partitions go,
    # so the second was not handed a single event that had been applied already.
    assert metric("events_duplicate_total", topic) == 0
    assert await count(sessions, "applied") == len(events)


def order_created(order_id: uuid.UUID) -> list[BaseModel]:
    """One OrderCreated in v1 and in v2, as the order service publishes it."""
    money = order_v2.Money(amount_cents=5, currency="EUR")
    return [
        order_v1.OrderCreated(
            order_id=order_id,
            customer_id="c",
            items=[order_v1.OrderLine(sku="s", quantity=1, unit_price_cents=5)],
            total_cents=5,
        ),
        order_v2.OrderCreated(
            order_id=order_id,
            customer_id="c",
            lines=[order_v2.OrderLine(sku="s", quantity=1, unit_price=money)],
            total=money,
        ),
    ]


async def test_a_rolling_deploy_from_v1_to_v2_applies_each_event_once(
    broker: str,
    sessions: Sessions,
    producer: AIOKafkaProducer,
    new_topic: NewTopic,
) -> None:
    """The producer publishes every event in v1 and v2; in the consumer group an
    instance that reads only v1 is stopped and one that reads only v2 takes over."""
    topic = await new_topic()
    events = [
        new_envelopes("chassis-test", str(o), order_created(o))
        for o in (uuid.uuid4() for _ in range(60))
    ]
    # The old instance goes (as a deploy's SIGTERM stops it) when it has applied the v1
    # copy of event 10 and before the v2 copy next to it is published, so that copy goes
    # to the new instance: the pair is split across the deploy.
    records = [copy for copies in events for copy in copies]
    before, after = records[:21], records[21:]

    async def publish(envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            await producer.send(topic, encoded(envelope), key=envelope.aggregate_id.encode())
        await producer.flush()

    group = f"chassis-test-{uuid.uuid4().hex[:8]}"
    applied: dict[int, list[uuid.UUID]] = {1: [], 2: []}

    def instance(model: type[BaseModel]) -> InboxConsumer:
        handler = recorder(applied[event_key(model)[1]])
        return new_consumer(
            broker, topic, sessions, producer, handlers={model: handler}, group=group
        )

    def committed(n: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return await committed_offsets(broker, group, topic) == n

        return check

    old, new = instance(order_v1.OrderCreated), instance(order_v2.OrderCreated)
    await publish(before)
    async with consuming(old) as old_task:
        await wait_until(committed(len(before)), timeout=40, watch=old_task)
    await publish(after)
    async with consuming(new) as new_task:
        await wait_until(committed(len(records)), timeout=60, watch=new_task)

    assert len(applied[1]) == 11
    assert sorted(applied[1] + applied[2]) == sorted(copies[0].event_id for copies in events)
    assert metric("events_duplicate_total", topic) == 1, "the v2 copy of the last v1 one"
    assert await count(sessions, "applied") == len(events)


async def test_a_handler_runs_in_the_trace_its_event_carries_and_passes_it_on(
    broker: str,
    sessions: Sessions,
    producer: AIOKafkaProducer,
    new_topic: NewTopic,
) -> None:
    topic, trace_id = await new_topic(), uuid.uuid4().hex
    traceparent = f"00-{trace_id}-00000000000000ab-01".encode()
    event = envelope_of(product("sku-t", 3))
    await producer.send_and_wait(
        topic, encoded(event), key=b"sku-t", headers=[("traceparent", traceparent)]
    )
    seen: list[str] = []

    async def apply(delivery: Delivery, payload: BaseModel) -> None:
        seen.append(format(trace.get_current_span().get_span_context().trace_id, "032x"))
        await delivery.publish(topic, "sku-t", payload)

    consumer = new_consumer(broker, topic, sessions, producer, apply)

    async def committed() -> bool:
        return await count(sessions, "outbox") == 1

    async with consuming(consumer) as task:
        await wait_until(committed, watch=task)
    async with sessions() as session:
        written = await session.scalar(sa.select(outbox_table.c.trace_context))
    assert seen == [trace_id]
    assert written is not None and trace_id in written["traceparent"]
