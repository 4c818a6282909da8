"""The outbox relay: publishes committed outbox rows to Kafka, in order, then deletes them."""

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from opentelemetry.trace import Span, StatusCode
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import BigInteger, Row, any_, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis import telemetry
from chassis.outbox import Outbox
from chassis.retry import Backoff
from chassis.tables import outbox

log = logging.getLogger(__name__)

PUBLISHED = Counter("outbox_published_total", "Outbox events published to Kafka", ["topic"])
BACKLOG = Gauge(
    "outbox_backlog", "Outbox rows still waiting after the relay's last round (0: drained)"
)
PUBLISH_LAG = Histogram(
    "outbox_publish_lag_seconds",
    "From an event's commit to the outbox until the broker acked it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# Any constant works: it only has to be the same for every relay of one database.
_RELAY_LOCK_ID = 0x0B0C5
_IDLE_POLL_SECONDS = 1.0
_ROUND_INTERVAL_SECONDS = 0.06
"""While the relay is busy (`_BUSY_ROWS_PER_SECOND`), the least time from the start of one
round to the start of the next, unless rows are left over: under load, the commits of
that time go in one round, in fewer and fuller record batches, as Kafka's producer
gathers records for `linger.ms`. A relay woken by every commit sent a round per commit,
a produce and a metadata request each, and each batch an object that the local broker,
Tansu, lists again on every later fetch of its partition. A commit made 60 ms or more
after the last round started is sent at once. 60 ms was measured against 30, 40, 80
and 100 at 200 orders/s: the least p99 (docs/performance.md, the levers "rounds at
least 40 ms apart" and "rounds 60 ms apart rather than 40")."""
_BUSY_ROWS_PER_SECOND = 150
"""A relay that sent at least this many rows a second over the last second is busy, and
spaces its rounds. Below it, commits come tens of milliseconds apart and a round carries
one or two however it is spaced, so waiting only added latency: 30 ms to a saga's p50 at
20 orders/s (docs/performance.md, the lever "spacing only while busy")."""

# A round's statements, built once (building one costs more CPU than running it); the
# ids to delete go as one array, so a round of any size runs one prepared statement.
_LOCK = select(func.pg_advisory_xact_lock(_RELAY_LOCK_ID))
_OLDEST = (
    select(
        outbox.c.id,
        outbox.c.topic,
        outbox.c.key,
        outbox.c.envelope,
        outbox.c.trace_context,
        outbox.c.created_at,
    )
    .order_by(outbox.c.id)
    .limit(bindparam("limit"))
)
_COUNT = select(func.count()).select_from(outbox)
_DELETE = delete(outbox).where(outbox.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger))))


@dataclass
class _PartitionBatch:
    """The rows of one round bound for one partition, as one Kafka record batch."""

    builder: Any  # aiokafka's BatchBuilder
    row_ids: list[int] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    """A publish span per row, ended when the batch's ack (or failure) arrives."""
    full: bool = False


class OutboxRelay:
    """Moves outbox rows to Kafka.

    One round is one transaction: lock, read the oldest rows, send them and wait for
    the broker's acks, delete the rows that were acked, commit. A crash before the
    commit leaves the rows to be sent again (at-least-once; consumers deduplicate). A
    transaction-scoped advisory lock lets only one relay per database run at a time,
    which keeps the events of each key in the order they were written.

    Each round sends at most ONE record batch per partition, holding the oldest
    pending rows of that partition, and waits for every batch before the next round.
    A record batch is appended whole or not at all, so a failure can never leave a
    later event of a key in the log without the earlier ones: the retry re-sends
    from the oldest. (Handing rows to `producer.send()` one by one let the producer
    split a partition's rows into several batches; when the first failed and the
    second was appended, e.g. while the broker was restarting, a retry put
    OrderCreated after OrderCancelled and the cancellation compensated nothing.)

    An ack counts only if the topic still has the partitions the rows were routed
    with. A topic re-created with another partition count (a restarted in-memory
    broker auto-creates it with its default count before anyone re-creates it as it
    was) maps keys elsewhere: acked rows would then lie in a partition no consumer
    reads, or in another partition than the key's later events. So after the acks the
    relay refreshes the metadata, and keeps the rows of a changed topic, to re-send
    them under the new map. One metadata request per non-empty round is the price.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
        signal: Outbox,
        batch_size: int = 500,
    ) -> None:
        self._sessions = sessions
        self._producer = producer
        self._signal = signal
        self._batch_size = batch_size
        self._backlog = False

    async def run(self) -> None:
        """Publish forever; wake on a local commit or poll for other writers' rows, and,
        while busy, space the rounds that do not continue a backlog (`_Pace`)."""
        backoff, loop, pace = Backoff(), asyncio.get_running_loop(), _Pace()
        while True:
            started = loop.time()
            self._signal.committed.clear()
            try:
                pace.sent(await self.publish_batch(), started)
            except Exception:
                delay = backoff.next_delay()
                log.warning("outbox relay failed; retrying in %.1fs", delay, exc_info=True)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if not self._backlog:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._signal.committed.wait(), _IDLE_POLL_SECONDS)
                await asyncio.sleep(started + pace.interval - loop.time())

    async def publish_batch(self) -> int:
        """Publish one round of the oldest rows; return how many were sent.

        Rows whose batch was acked are deleted even when another partition's batch
        failed; then the first failure is raised. `outbox_backlog` is set to the rows
        the round found and did not send: a steady or shrinking value says the relay
        keeps up, 0 says the outbox is drained.
        """
        async with self._sessions.begin() as session:
            await session.execute(_LOCK)
            rows = (await session.execute(_OLDEST, {"limit": self._batch_size})).all()
            waiting = len(rows)
            if waiting == self._batch_size:  # only a full read leaves the total unknown
                waiting = (await session.execute(_COUNT)).scalar_one()
            routing = {
                topic: sorted(await self._producer.partitions_for(topic))
                for topic in {row.topic for row in rows}
            }
            batches = self._fill(rows, routing)
            results = await self._send(batches)
            if any(not isinstance(result, BaseException) for result in results):
                moved = await self._rerouted(routing)
                results = [
                    PartitionsChanged(topic) if topic in moved else result
                    for (topic, _), result in zip(batches, results, strict=True)
                ]
            _end_spans(batches.values(), results)
            sent = [
                row_id
                for (_, batch), result in zip(batches.items(), results, strict=True)
                if not isinstance(result, BaseException)
                for row_id in batch.row_ids
            ]
            if sent:
                await session.execute(_DELETE, {"ids": sent})
        BACKLOG.set(waiting - len(sent))
        acked_at, by_id = datetime.now(UTC), {row.id: row for row in rows}
        for row_id in sent:
            PUBLISHED.labels(by_id[row_id].topic).inc()
            PUBLISH_LAG.observe((acked_at - by_id[row_id].created_at).total_seconds())
        # More rows wait if the read was full or some did not fit this round's batches.
        self._backlog = len(rows) == self._batch_size or len(sent) < len(rows)
        for result in results:
            if isinstance(result, Exception):
                raise result
            if isinstance(result, BaseException):  # a cancelled ack: failed all the same
                raise RuntimeError(f"a batch ended with {result!r}")
        return len(sent)

    def _fill(
        self, rows: Sequence[Row[Any, Any, Any, Any, Any, Any]], routing: dict[str, list[int]]
    ) -> dict[tuple[str, int], _PartitionBatch]:
        """Put each row into its partition's batch, oldest first, until that batch is full."""
        batches: dict[tuple[str, int], _PartitionBatch] = {}
        for row in rows:
            key = row.key.encode()
            # The producer's own choice for a keyed record: murmur2(key) mod partitions.
            partition = DefaultPartitioner()(key, routing[row.topic], routing[row.topic])
            if (row.topic, partition) not in batches:
                batches[row.topic, partition] = _PartitionBatch(self._producer.create_batch())
            batch = batches[row.topic, partition]
            if batch.full:
                continue  # a later row of a full partition waits for the next round
            span, headers = telemetry.publish_span(row.topic, row.trace_context)
            value = row.envelope.encode()
            if batch.builder.append(key=key, value=value, timestamp=None, headers=headers) is None:
                batch.full = True  # the span is dropped unended: a span is exported when ended
                continue
            batch.row_ids.append(row.id)
            batch.spans.append(span)
        return batches

    async def _send(
        self, batches: dict[tuple[str, int], _PartitionBatch]
    ) -> list[object | BaseException]:
        """Submit every batch, then wait for all of them, failed or not.

        Waiting for all keeps a retry from overlapping batches still in flight.
        """
        acks: list[asyncio.Future[Any]] = []
        try:
            for (topic, partition), batch in batches.items():
                batch.builder.close()
                acks.append(
                    await self._producer.send_batch(batch.builder, topic, partition=partition)
                )
        except BaseException:
            await asyncio.gather(*acks, return_exceptions=True)
            raise
        return list(await asyncio.gather(*acks, return_exceptions=True))

    async def _rerouted(self, routing: dict[str, list[int]]) -> set[str]:
        """The topics whose partitions, freshly read from the broker, differ from `routing`."""
        await self._producer.client.force_metadata_update()
        return {
            topic
            for topic, partitions in routing.items()
            if sorted(await self._producer.partitions_for(topic)) != partitions
        }


@dataclass
class _Pace:
    """Whether the relay is busy, from the rows it sent per second over the last window.

    A window ends at the first round that starts a second or more after the window did,
    so a spell of idle polls counts as time without rows.
    """

    busy: bool = False
    rows: int = 0
    since: float = float("-inf")

    def sent(self, rows: int, at: float) -> None:
        """Count the rows of a round that started `at` (loop time, in seconds)."""
        self.rows += rows
        if at - self.since >= 1.0:
            self.busy = self.rows / (at - self.since) >= _BUSY_ROWS_PER_SECOND
            self.rows, self.since = 0, at

    @property
    def interval(self) -> float:
        """The least time from the start of a round to the start of the next."""
        return _ROUND_INTERVAL_SECONDS if self.busy else 0.0


def _end_spans(batches: Iterable[_PartitionBatch], results: Sequence[object]) -> None:
    for batch, result in zip(batches, results, strict=True):
        for span in batch.spans:
            if isinstance(result, BaseException):
                span.set_status(StatusCode.ERROR, str(result) or type(result).__name__)
            span.end()


class PartitionsChanged(Exception):
    """A batch was acked, but its topic's partitions changed under it: it is sent again."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"the partitions of {topic} changed; re-sending its events")
