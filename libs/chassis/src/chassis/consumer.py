"""The idempotent consumer: apply each event once, commit the offset after the DB commit."""

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis import logs, telemetry
from chassis.kafka import create_consumer
from chassis.outbox import Outbox
from chassis.retry import Backoff
from chassis.tables import processed_events
from shared_contracts import PAYLOADS, Envelope, event_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One event being applied: its transaction, its envelope, and where its effects go."""

    session: AsyncSession
    envelope: Envelope
    outbox: Outbox

    async def publish(
        self, topic: str, key: str, payload: BaseModel | Sequence[BaseModel]
    ) -> Envelope:
        """Write an event caused by this one to the outbox, in this transaction."""
        return await self.outbox.add(self.session, topic, key, payload, caused_by=self.envelope)


Handler = Callable[[Delivery, Any], Awaitable[None]]
"""Applies one event's typed payload inside the delivery's transaction."""

Handlers = Mapping[type[BaseModel], Handler]
"""The events a service applies: each payload model (an event type in one version) and
the function that applies it."""

Prefetch = Callable[[AsyncSession, Sequence[BaseModel]], Awaitable[None]]
"""Called in a transaction before its handlers, with the typed payloads of the events
they will apply, in order: a service loads (and locks) in one statement the rows that
all of them read, where a handler each would run one statement per event."""

CONSUMED = Counter("events_consumed_total", "Events applied", ["topic", "event_type"])
DUPLICATES = Counter("events_duplicate_total", "Redelivered events skipped", ["topic"])
RETRIED = Counter("events_retried_total", "Failed attempts that were retried", ["topic"])
DEAD_LETTERED = Counter("events_dead_lettered_total", "Events sent to a DLQ", ["topic"])
LAG = Gauge(
    "consumer_lag",
    "Records not yet applied, per partition, as of the last commit",
    ["topic", "partition"],
)
ASSIGNED = Gauge(
    "consumer_assigned_partitions", "Partitions of a topic this process consumes now", ["topic"]
)

HANDOVER_SECONDS = 5.0
"""How long a revocation waits for the events in hand before the group moves on without it."""

# SQLSTATE classes that say "try again": connection, rollback (serialization,
# deadlock), insufficient resources, operator intervention (server shutting down).
_TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")


_RECORD_FIRST_TIME = (
    insert(processed_events)
    .from_select(
        ["consumer", "event_id"],
        sa.select(
            sa.bindparam("consumer", type_=sa.Text),
            sa.func.unnest(sa.bindparam("ids", type_=postgresql.ARRAY(postgresql.UUID))),
        ),
    )
    .on_conflict_do_nothing()
    .returning(processed_events.c.event_id)
)
"""Inbox rows for a batch's events; returns the ids not seen before. The ids go as one
array, so every batch size shares one statement: a multi-row VALUES is a statement per
row count, each compiled and prepared anew."""


class PoisonMessage(Exception):
    """A message that can never be applied: it goes to the dead-letter topic at once."""


def read_envelope(value: bytes | None) -> Envelope:
    """Read a record's envelope, or raise `PoisonMessage` saying why not."""
    if value is None:
        raise PoisonMessage("message has no value")
    try:
        return Envelope.model_validate_json(value)
    except ValidationError as exc:
        raise PoisonMessage(f"not an event envelope: {exc}") from exc


def read_payload(envelope: Envelope) -> BaseModel:
    """The envelope's typed payload, or `PoisonMessage` saying why not."""
    model = PAYLOADS.get((envelope.event_type, envelope.event_version))
    if model is None:
        raise PoisonMessage(f"unknown event {envelope.event_type} version {envelope.event_version}")
    try:
        return model.model_validate(envelope.payload)
    except ValidationError as exc:
        raise PoisonMessage(f"invalid {envelope.event_type} payload: {exc}") from exc


class Dispatcher:
    """Which handler, if any, applies an envelope: versions and their copies.

    A service handles some versions of some event types. During a deprecation window a
    producer publishes one event in several versions (`Envelope.versions`), a record
    each: the service applies the newest copy it can read and skips the others, so a
    service that reads only v1, one that reads only v2 and one that reads both each
    apply the event exactly once. The copies share one `event_id`, so in a fleet that
    is halfway through moving to v2 the inbox turns a second copy into a duplicate when
    a partition changes hands between the two. An event of a type the service handles
    but in no version it can read, and an event of a type nobody knows, are poison.
    """

    def __init__(self, handlers: Handlers) -> None:
        self._handlers = {event_key(model): handler for model, handler in handlers.items()}
        self._readable: dict[str, set[int]] = {}
        for event_type, version in self._handlers:
            self._readable.setdefault(event_type, set()).add(version)

    def handler(self, envelope: Envelope) -> Handler | None:
        """The handler of this copy, or None when the service does not apply it."""
        event_type, version = envelope.event_type, envelope.event_version
        readable = self._readable.get(event_type, set())
        if not readable:
            if (event_type, version) not in PAYLOADS:
                raise PoisonMessage(f"unknown event {event_type} version {version}")
            return None  # an event on this topic that this service has no use for
        newest = max(readable & {version, *envelope.versions}, default=None)
        if newest is None:
            raise PoisonMessage(
                f"cannot read {event_type} version {version}: "
                f"this consumer reads versions {sorted(readable)}"
            )
        if newest != version:
            return None  # a copy in another version, which this service applies instead
        return self._handlers[(event_type, version)]


def is_transient(exc: BaseException) -> bool:
    """True for failures that go away by themselves: the database or network being down."""
    transient = (OSError, TimeoutError, PoolTimeout, OperationalError, InterfaceError)
    if isinstance(exc, transient):
        return True
    if isinstance(exc, DBAPIError):
        sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
        return exc.connection_invalidated or sqlstate.startswith(_TRANSIENT_SQLSTATE_CLASSES)
    return False


class InboxConsumer:
    """Consumes `topics` in group `name` and applies events through `handlers`.

    The events of a fetch, of every partition in it, are applied in one transaction
    that also inserts `(name, event_id)` into the inbox for each; an event whose row
    exists was applied before and is skipped. Offsets are committed only after the
    transaction, so a crash in between redelivers events that the inbox then ignores. Transient failures (database or
    network down) are retried forever with backoff; any other failure is retried
    `max_attempts` times, then the event goes to `<topic>.dlq` and the partition moves on.
    `prefetch`, if given, runs in each transaction before its handlers, with their
    events' payloads, to load in one statement what they all read.

    Instances of a service share group `name`, so each gets some of the partitions. On
    a rebalance the group first revokes every partition: the loop abandons the rest
    of its batch, the revocation waits (up to `HANDOVER_SECONDS`) for the events in
    hand and commits the offsets of everything applied, and only then may a new owner
    start reading. An event still in hand after that wait is applied by whichever of
    the two commits first; the other finds it in the inbox and skips it.
    """

    def __init__(
        self,
        name: str,
        bootstrap_servers: str,
        topics: Sequence[str],
        handlers: Handlers,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        producer: Callable[[], AIOKafkaProducer | None],
        max_attempts: int = 5,
        prefetch: Prefetch | None = None,
    ) -> None:
        self.name = name
        self.connected = False
        self._stopping = asyncio.Event()
        self._bootstrap_servers = bootstrap_servers
        self._topics = list(topics)
        self._dispatcher = Dispatcher(handlers)
        self._sessions = sessions
        self._outbox = outbox
        self._producer = producer
        self._max_attempts = max_attempts
        self._prefetch = prefetch
        self._client: AIOKafkaConsumer | None = None
        self._in_hand = asyncio.Lock()
        """Held while a fetch's events are applied and their offsets noted."""
        self._applied: dict[TopicPartition, int] = {}
        """The batch in hand's offsets to commit: the one after the last event applied."""
        self._generation = 0
        """Bumped by every revocation: a batch fetched before it is abandoned."""
        self._count_assigned(set())

    async def run(self) -> None:
        """Consume until `stop()`, reconnecting with backoff whenever the client fails."""
        backoff = Backoff()
        while not self._stopping.is_set():
            self._client = consumer = await self._connect()
            try:
                await self._consume(consumer)
            except Exception:
                delay = backoff.next_delay()
                log.warning("consumer failed; reconnecting in %.1fs", delay, exc_info=True)
                await asyncio.sleep(delay)
            finally:
                self.connected, self._client, self._applied = False, None, {}
                self._count_assigned(set())
                await consumer.stop()

    def stop(self) -> None:
        """Finish the events in hand, commit the offsets of what was applied, and return."""
        self._stopping.set()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            generation = self._generation
            applied: dict[TopicPartition, int] = {}
            self._applied = applied

            def abandoned(generation: int = generation) -> bool:
                # The rest is redelivered: after a restart, or to the partition's next owner.
                return self._stopping.is_set() or self._generation != generation

            async with self._in_hand:
                if batches and not abandoned():
                    await self._handle_fetch(batches, applied, abandoned)
            if self._generation != generation:
                continue  # revoked: the revocation committed what was applied
            # One commit for every partition of the fetch: a round trip each would cost
            # a saga as many network delays as the fetch had partitions.
            if applied:
                self._applied = {}
                await self._commit(consumer, applied)
                for partition, offset in applied.items():
                    _report_lag(consumer, partition, offset)

    async def _hand_over(self, revoked: set[TopicPartition]) -> None:
        """Before a rebalance: stop the batch, finish the events in hand, commit what was applied."""
        self._generation += 1
        self._count_assigned(set())
        if revoked:
            log.info("group %s: revoked %s", self.name, _describe(revoked))
        for tp in revoked:  # the next owner reports their lag
            with contextlib.suppress(KeyError):
                LAG.remove(tp.topic, str(tp.partition))
        try:
            async with asyncio.timeout(HANDOVER_SECONDS), self._in_hand:
                pass
        except TimeoutError:
            log.warning(
                "group %s: the events in hand are still not applied after %.0fs; handing over anyway",
                self.name,
                HANDOVER_SECONDS,
            )
        # Detached from the loop: events in hand that finish after this are not
        # committed, so the partition's next owner gets them again and its inbox skips them.
        applied, self._applied = self._applied, {}
        if applied and self._client is not None:
            await self._commit(self._client, applied)

    def _take_over(self, assigned: set[TopicPartition]) -> None:
        """After a rebalance: count and log the partitions this member now owns."""
        self._count_assigned(assigned)
        log.info("group %s: assigned %s", self.name, _describe(assigned))

    def _count_assigned(self, assigned: set[TopicPartition]) -> None:
        for topic in self._topics:
            ASSIGNED.labels(topic).set(sum(tp.topic == topic for tp in assigned))

    async def _connect(self) -> AIOKafkaConsumer:
        backoff = Backoff()
        while True:
            consumer = create_consumer(
                self._bootstrap_servers, self.name, self._topics, _Rebalance(self)
            )
            try:
                await consumer.start()
            except Exception:
                await consumer.stop()
                delay = backoff.next_delay()
                log.warning("cannot reach the broker; retrying in %.1fs", delay, exc_info=True)
                await asyncio.sleep(delay)
                continue
            self.connected = True
            return consumer

    @staticmethod
    async def _commit(consumer: AIOKafkaConsumer, offsets: dict[Any, int]) -> None:
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            # The group rebalanced: the partition's new owner re-reads these
            # events and the inbox turns them into no-ops.
            log.warning("offset commit failed after a rebalance", exc_info=True)

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one record alone, retrying, or dead-letter it; return when it is done with.

        The loop applies fetches (`_handle_fetch`); this is the one-record form that
        callers of chassis 0.2.0 have, kept so that the 0.x line breaks none of them.
        """
        partition = TopicPartition(record.topic, record.partition)
        await self._handle_fetch({partition: [record]}, {})

    async def _handle_fetch(
        self,
        batches: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]],
        applied: dict[TopicPartition, int],
        abandoned: Callable[[], bool] = lambda: False,
    ) -> None:
        """Apply a fetch's records, each partition's in order; note in `applied` how far each got.

        Their events, of every partition, are applied in one transaction, with one inbox
        insert for all: a fetch brings records of many partitions (six per topic), often
        one or two each, and each transaction saved is a BEGIN, an inbox insert, an
        outbox insert and a COMMIT. Events of different partitions have different keys,
        so applying them together orders nothing that must stay apart. If that
        transaction fails, each event is applied alone, retried or dead-lettered by
        itself, so that one failing event holds up no other; the failed attempt counts
        against the event whose handler raised. Between events applied alone,
        `abandoned()` (a stop or a revocation) ends the work early. `applied[partition]`
        is the offset after the last record done with, noted as each is, so that a
        revocation that stops waiting commits what was applied so far.
        """
        read = {
            partition: [_read(record, self._dispatcher) for record in records]
            for partition, records in batches.items()
        }
        events = [event for reads in read.values() for event in reads if isinstance(event, _Event)]
        failure = await self._attempt(events) if len(events) > 1 else None
        alone = len(events) == 1 or failure is not None
        if failure is not None:
            log.warning(
                "applying %d events in one transaction failed; applying each alone",
                len(events),
                exc_info=failure.error,
            )
        for partition, records in batches.items():
            for record, event in zip(records, read[partition], strict=True):
                if alone and abandoned():
                    return
                if isinstance(event, PoisonMessage):
                    await self._dead_letter(record, event)
                elif isinstance(event, _Event) and alone:
                    first = (
                        failure.error if failure is not None and failure.event is event else None
                    )
                    await self._apply_retrying(event, first)
                applied[partition] = record.offset + 1

    async def _apply_retrying(self, event: "_Event", failed: Exception | None) -> None:
        """Apply `event` alone until it is applied or dead-lettered; `failed` is a first attempt's error."""
        backoff, failures = Backoff(), 0
        topic, envelope = event.record.topic, event.envelope
        with logs.about(**_log_context(envelope, event.payload)):
            while True:
                if failed is None:
                    failure = await self._attempt([event])
                    if failure is None:
                        return
                    failed = failure.error
                if not is_transient(failed):
                    failures += 1
                    if failures >= self._max_attempts:
                        await self._dead_letter(event.record, failed)
                        return
                RETRIED.labels(topic).inc()
                delay = backoff.next_delay()
                log.warning(
                    "applying %s %s failed; retrying in %.1fs",
                    envelope.event_type,
                    envelope.event_id,
                    delay,
                    exc_info=failed,
                )
                failed = None
                await asyncio.sleep(delay)

    async def _attempt(self, events: Sequence["_Event"]) -> "_Failure | None":
        """Apply `events` in one transaction with their inbox rows; None, or what failed.

        An event whose inbox row already exists was applied before and is skipped, as is
        a second copy of one event in the same batch.
        """
        failing: _Event | None = None
        applied: list[_Event] = []
        try:
            async with self._sessions.begin() as session:
                ids = [e.envelope.event_id for e in events]
                first_time = set(
                    await session.scalars(_RECORD_FIRST_TIME, {"consumer": self.name, "ids": ids})
                )
                fresh = []
                for event in events:
                    if event.envelope.event_id not in first_time:
                        DUPLICATES.labels(event.record.topic).inc()
                        continue
                    first_time.discard(event.envelope.event_id)
                    fresh.append(event)
                if self._prefetch is not None and fresh:
                    # One load for events of several traces: a span linked to each.
                    with telemetry.span("prefetch", {}, links=[e.trace for e in fresh]):
                        await self._prefetch(session, [event.payload for event in fresh])
                for event in fresh:
                    failing = event
                    with event.span(), logs.about(**_log_context(event.envelope, event.payload)):
                        delivery = Delivery(session, event.envelope, self._outbox)
                        await event.handler(delivery, event.payload)
                    applied.append(event)
                failing = None  # past the handlers: a failure now is the commit's
        except Exception as exc:
            return _Failure(failing, exc)
        for event in applied:
            CONSUMED.labels(event.record.topic, event.envelope.event_type).inc()
        return None

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], error: Exception) -> None:
        # The record's own headers (its trace context) stay, so that a replay continues its trace.
        headers = [
            *record.headers,
            ("dlq.error", type(error).__name__.encode()),
            ("dlq.reason", str(error)[:2000].encode()),
            ("dlq.consumer", self.name.encode()),
            ("dlq.topic", record.topic.encode()),
            ("dlq.partition", str(record.partition).encode()),
            ("dlq.offset", str(record.offset).encode()),
        ]
        # aiokafka refuses a record with neither key nor value: send an empty value.
        value = b"" if record.value is None and record.key is None else record.value
        backoff = Backoff()
        while True:
            producer = self._producer()
            try:
                if producer is None:
                    raise ConnectionError("producer not connected yet")
                await producer.send_and_wait(
                    f"{record.topic}.dlq", value, key=record.key, headers=headers
                )
                break
            except Exception:
                delay = backoff.next_delay()
                log.warning("dead-lettering failed; retrying in %.1fs", delay, exc_info=True)
                await asyncio.sleep(delay)
        DEAD_LETTERED.labels(record.topic).inc()
        log.error(
            "dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, error
        )


@dataclass(frozen=True)
class _Event:
    """A record that this service applies, read: its envelope, typed payload and handler."""

    record: ConsumerRecord[bytes, bytes]
    envelope: Envelope
    payload: BaseModel
    handler: Handler

    @contextlib.contextmanager
    def span(self) -> Iterator[None]:
        """The span of applying it, continuing the trace that the record's headers carry.

        What the handler writes to the outbox, and the events that causes downstream,
        join that trace.
        """
        attributes = {
            "messaging.system": "kafka",
            "messaging.destination.name": self.record.topic,
            "event.type": self.envelope.event_type,
            "event.id": str(self.envelope.event_id),
        }
        with telemetry.span(
            f"process {self.record.topic}", attributes, SpanKind.CONSUMER, self.trace
        ):
            yield

    @functools.cached_property
    def trace(self) -> Context:
        """The trace context the record's headers carry, read once for the prefetch's
        link and the span."""
        return telemetry.context_of_record(self.record.headers)


@dataclass(frozen=True)
class _Failure:
    """A failed attempt: the event whose handler raised (None: none did), and the error."""

    event: _Event | None
    error: Exception


def _read(
    record: ConsumerRecord[bytes, bytes], dispatcher: Dispatcher
) -> _Event | PoisonMessage | None:
    """The record's event if the service applies it, None if it skips it, or why it is poison."""
    try:
        envelope = read_envelope(record.value)
        handler = dispatcher.handler(envelope)
        if handler is None:
            return None  # a copy in another version, or an event of no use here
        return _Event(record, envelope, read_payload(envelope), handler)
    except PoisonMessage as exc:
        return exc


def identifiers(payload: BaseModel) -> dict[str, str]:
    """The ids an event carries: each of its payload's `*_id` fields that holds a UUID.

    The chassis knows no event's fields by name, only the convention that the ids the
    system mints are UUIDs in `*_id` fields (STYLE.md §5). Names a client chose (a
    customer id, say) are strings, not such ids, and stay out of log lines.
    """
    return {
        name: str(value)
        for name, value in payload
        if name.endswith("_id") and isinstance(value, UUID)
    }


def _log_context(envelope: Envelope, payload: BaseModel) -> dict[str, str]:
    """What a log line written while applying this event is about: the event and its ids."""
    return {"event_id": str(envelope.event_id), **identifiers(payload)}


def _report_lag(consumer: AIOKafkaConsumer, partition: TopicPartition, position: int) -> None:
    """Records between `position` and the partition's end, as the last fetch saw it.

    Approximate on the local broker, whose high watermark can lag by a batch.
    """
    highwater = consumer.highwater(partition)
    if highwater is not None:
        LAG.labels(partition.topic, str(partition.partition)).set(max(0, highwater - position))


def _describe(partitions: set[TopicPartition]) -> str:
    """Partitions by topic for a log line, e.g. `orders.events[0, 2, 4]`; `nothing` if none."""
    topics = sorted({tp.topic for tp in partitions})
    numbers = {t: sorted(tp.partition for tp in partitions if tp.topic == t) for t in topics}
    return ", ".join(f"{t}{numbers[t]}" for t in topics) or "nothing"


# aiokafka has no type information, so its base class is `Any` to mypy.
class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Passes the group's rebalance callbacks to the consumer; aiokafka awaits each one."""

    def __init__(self, consumer: InboxConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Called before the group reassigns partitions, with all that this member had."""
        await self._consumer._hand_over(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Called after the rebalance, with every partition this member now has."""
        self._consumer._take_over(assigned)
