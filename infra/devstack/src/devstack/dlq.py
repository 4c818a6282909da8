"""List and replay a dead-letter topic (`<topic>.dlq`).

The consumers (`chassis.consumer.InboxConsumer`) dead-letter a record with its key and
value unchanged and these headers: `dlq.error` (exception type), `dlq.reason`,
`dlq.consumer` (consumer group), and `dlq.topic`/`dlq.partition`/`dlq.offset` (where
it was read). `list_dead_letters` reads a DLQ without a consumer group;
`replay_dead_letters` re-publishes its records to their original topics and records
its progress as the offsets of the consumer group `dlq-replay.<dlq topic>`.

Reading stops at the end offsets seen at the start, plus `IDLE_SECONDS` without new
records: the local broker (Tansu) may report end offsets up to one batch short, so
stopping exactly at them could miss the last records.
"""

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from chassis.kafka import create_producer
from devstack.errors import DevstackError
from shared_contracts import Envelope

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
"""The broker of `make up` (`python -m devstack up`)."""

CONNECT_TIMEOUT = 10.0
"""Seconds to reach the broker before giving up."""

IDLE_SECONDS = 1.0
"""Seconds without new records, after reaching the end offsets seen at start, to stop."""

MAX_IDLE_SECONDS = 10.0
"""Stop anyway after this long without records, even if the end offsets were not reached."""

REPLAYED_FROM = "dlq.replayed-from"
_DLQ_SUFFIX = ".dlq"
_REASON_WIDTH = 160


def dlq_topic(topic: str) -> str:
    """The dead-letter topic for `topic`, which may be a main topic or already a DLQ."""
    return topic if topic.endswith(_DLQ_SUFFIX) else f"{topic}{_DLQ_SUFFIX}"


def replay_group(dlq: str) -> str:
    """The consumer group whose offsets on `dlq` say how far replay has gone."""
    return f"dlq-replay.{dlq}"


def default_bootstrap() -> str:
    """`KAFKA_BOOTSTRAP_SERVERS`, or the local stack's broker."""
    return os.environ.get(BOOTSTRAP_ENV) or DEFAULT_BOOTSTRAP


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, with what its `dlq.*` headers say."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_record(cls, record: ConsumerRecord[bytes, bytes]) -> "DeadLetter":
        return cls(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            tuple((name, value or b"") for name, value in record.headers),
        )

    def header(self, name: str) -> str | None:
        """The last value of header `name`, decoded, or None if absent."""
        for key, value in reversed(self.headers):
            if key == name:
                return value.decode(errors="replace")
        return None

    @property
    def original_topic(self) -> str:
        """Where the record was consumed from (`dlq.topic`, else the DLQ name minus `.dlq`)."""
        return self.header("dlq.topic") or self.topic.removesuffix(_DLQ_SUFFIX)

    @property
    def consumer(self) -> str | None:
        return self.header("dlq.consumer")

    @property
    def reason(self) -> str:
        """`dlq.reason` cut to one line of at most 160 characters."""
        lines = (self.header("dlq.reason") or "").strip().splitlines()
        text = lines[0] if lines else ""
        if len(lines) > 1 or len(text) > _REASON_WIDTH:
            text = text[: _REASON_WIDTH - 3].rstrip() + "..."
        return text

    @property
    def event(self) -> str:
        """`<event_type> <event_id>` if the value is an envelope, else `unparseable`."""
        if not self.value:
            return "unparseable"
        try:
            envelope = Envelope.model_validate_json(self.value)
        except ValidationError:
            return "unparseable"
        return f"{envelope.event_type} {envelope.event_id}"

    @property
    def key_text(self) -> str:
        return "-" if self.key is None else self.key.decode(errors="replace")

    @property
    def location(self) -> str:
        """`<dlq topic>:<partition>:<offset>`, the value of `dlq.replayed-from`."""
        return f"{self.topic}:{self.partition}:{self.offset}"

    def describe(self) -> str:
        """One line: where it is, key, where from, who failed, the event, and why."""
        source = (
            f"{self.original_topic}[{self.header('dlq.partition') or '?'}]"
            f"@{self.header('dlq.offset') or '?'}"
        )
        error = self.header("dlq.error") or "?"
        return (
            f"[{self.partition}]@{self.offset} key={self.key_text} from={source} "
            f"consumer={self.consumer or '?'} event={self.event} error={error}: {self.reason}"
        )

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The headers to re-publish with: `dlq.*` dropped, `dlq.replayed-from` added."""
        kept = [(name, value) for name, value in self.headers if not name.startswith("dlq.")]
        return [*kept, (REPLAYED_FROM, self.location.encode())]


@dataclass(frozen=True)
class Replayed:
    """A dead letter and where it was re-published (partition and offset are -1 in a dry run)."""

    letter: DeadLetter
    partition: int
    offset: int

    def describe(self) -> str:
        target = (
            self.letter.original_topic
            if self.offset < 0
            else f"{self.letter.original_topic}[{self.partition}]@{self.offset}"
        )
        return (
            f"[{self.letter.partition}]@{self.letter.offset} key={self.letter.key_text} "
            f"-> {target} consumer={self.letter.consumer or '?'} event={self.letter.event}"
        )


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did: the records re-published, and how many the filter left out."""

    dlq: str
    replayed: list[Replayed]
    left_out: int
    dry_run: bool


def _unreachable(bootstrap: str, exc: BaseException) -> DevstackError:
    why = str(exc) or type(exc).__name__
    return DevstackError(f"cannot reach the broker at {bootstrap}: {why}".split("\n")[0])


@asynccontextmanager
async def _started(
    client: AIOKafkaConsumer | AIOKafkaProducer, bootstrap: str
) -> AsyncIterator[None]:
    try:
        await asyncio.wait_for(client.start(), CONNECT_TIMEOUT)
    except (KafkaError, OSError, TimeoutError) as exc:
        await client.stop()
        raise _unreachable(bootstrap, exc) from None
    try:
        yield
    finally:
        await client.stop()


async def _assign_all(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Assign every partition of `topic` to `consumer`, or say the topic does not exist."""
    try:
        topics = await asyncio.wait_for(consumer.topics(), CONNECT_TIMEOUT)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise DevstackError(f"cannot read the broker's topics: {exc}".split("\n")[0]) from None
    partitions = consumer.partitions_for_topic(topic) if topic in topics else None
    if not partitions:
        raise DevstackError(f"unknown topic {topic}")
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    return tps


async def _read_to_end(
    consumer: AIOKafkaConsumer, tps: Sequence[TopicPartition]
) -> AsyncGenerator[ConsumerRecord[bytes, bytes], None]:
    """Yield records from the consumer's positions until the end offsets seen now.

    Then keep reading until `IDLE_SECONDS` pass without a record, because Tansu's
    end offsets can be one batch short.
    """
    ends: dict[TopicPartition, int] = await consumer.end_offsets(list(tps))
    loop = asyncio.get_running_loop()
    last_activity = loop.time()
    reached = False
    while True:
        batches = await consumer.getmany(*tps, timeout_ms=200)
        got = False
        for records in batches.values():
            for record in records:
                got = True
                yield record
        now = loop.time()
        if got:
            last_activity = now
        if not reached:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                reached, last_activity = True, max(last_activity, now)
        idle = now - last_activity
        if (reached and idle >= IDLE_SECONDS) or idle >= MAX_IDLE_SECONDS:
            return


async def list_dead_letters(bootstrap: str, topic: str) -> list[DeadLetter]:
    """Every record in the DLQ of `topic` (main or `.dlq` name), read without committing."""
    dlq = dlq_topic(topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    letters: list[DeadLetter] = []
    try:
        async with _started(consumer, bootstrap):
            tps = await _assign_all(consumer, dlq)
            await consumer.seek_to_beginning(*tps)
            async with aclosing(_read_to_end(consumer, tps)) as records:
                letters.extend([DeadLetter.from_record(record) async for record in records])
    except KafkaError as exc:
        raise DevstackError(f"broker error while reading {dlq}: {exc}".split("\n")[0]) from None
    return letters


async def replay_dead_letters(
    bootstrap: str,
    topic: str,
    *,
    consumer_name: str | None = None,
    dry_run: bool = False,
    progress: Callable[[Replayed], None] = lambda _: None,
) -> ReplayResult:
    """Re-publish the DLQ's records not replayed before to their original topics.

    Each record goes to its `dlq.topic` with the same key and value, its `dlq.*`
    headers replaced by `dlq.replayed-from`. After the broker acknowledges it
    (acks=all), the offset of group `dlq-replay.<dlq>` on the DLQ moves past it, so a
    second run replays only records dead-lettered since. With `consumer_name`, only
    records whose `dlq.consumer` matches are replayed; progress on a partition is then
    recorded only up to the first record left out, so none is ever lost to a later
    unfiltered run (replayed records after it may be replayed again: a no-op for the
    consumers' inbox). `dry_run` publishes and records nothing. `progress` is called
    after each record.
    """
    dlq = dlq_topic(topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=replay_group(dlq),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    replayed: list[Replayed] = []
    left_out = 0
    blocked: set[TopicPartition] = set()  # partitions where the filter left a record out
    try:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(_started(consumer, bootstrap))
            tps = await _assign_all(consumer, dlq)
            known = await consumer.topics()
            producer = None
            if not dry_run:
                producer = create_producer(bootstrap)
                await stack.enter_async_context(_started(producer, bootstrap))
            records = await stack.enter_async_context(aclosing(_read_to_end(consumer, tps)))
            async for record in records:
                tp = TopicPartition(record.topic, record.partition)
                letter = DeadLetter.from_record(record)
                if consumer_name is not None and letter.consumer != consumer_name:
                    left_out += 1
                    blocked.add(tp)
                    continue
                if letter.original_topic not in known:
                    raise DevstackError(
                        f"{letter.location}: its original topic "
                        f"{letter.original_topic} does not exist"
                    )
                if producer is None:
                    done = Replayed(letter, -1, -1)
                else:
                    meta = await producer.send_and_wait(
                        letter.original_topic,
                        letter.value,
                        key=letter.key,
                        headers=letter.replay_headers(),
                    )
                    done = Replayed(letter, meta.partition, meta.offset)
                    if tp not in blocked:
                        await consumer.commit({tp: record.offset + 1})
                replayed.append(done)
                progress(done)
    except (KafkaError, TimeoutError) as exc:
        why = str(exc) or type(exc).__name__
        raise DevstackError(f"broker error while replaying {dlq}: {why}".split("\n")[0]) from None
    return ReplayResult(dlq, replayed, left_out, dry_run)
