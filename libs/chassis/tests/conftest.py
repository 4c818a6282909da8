"""Chassis test fixtures on top of the root `postgres` and `broker` fixtures.

Each test gets its own database (the relay's advisory lock and the outbox table are
per database, so tests cannot see each other's rows) and its own topics.
"""

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis import tables
from chassis.db import create_engine, create_sessionmaker
from chassis.kafka import create_producer
from devstack.postgres import PostgresServer
from devstack.topics import create_topics

PARTITIONS = 6
"""Partitions of every topic the tests create."""

ReadTopic = Callable[..., Awaitable[list[ConsumerRecord[bytes, bytes]]]]

test_metadata = sa.MetaData()

applied = sa.Table(
    "applied",
    test_metadata,
    sa.Column("event_id", sa.Uuid, nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
)
"""What the test handlers write: one row per event they applied."""


@pytest.fixture
async def sessions(postgres: PostgresServer) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a fresh database holding the outbox, the inbox and `applied`."""
    name = f"chassis_{secrets.token_hex(4)}"
    engine = create_engine(postgres.provision(name, name, secrets.token_hex(8)))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(tables.metadata.create_all)
            await connection.run_sync(test_metadata.create_all)
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def new_topic(broker: str) -> Callable[[], Awaitable[str]]:
    """Factory: create a fresh topic (6 partitions) and its `.dlq` twin; return its name."""

    async def make() -> str:
        topic = f"chassis-test-{uuid.uuid4().hex[:12]}"
        await create_topics(broker, topics=[topic, f"{topic}.dlq"])
        return topic

    return make


@pytest.fixture
async def producer(broker: str) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer configured as the services configure theirs."""
    kafka = create_producer(broker)
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()


@pytest.fixture
def read_topic(broker: str) -> ReadTopic:
    """Factory: every record of a topic, read from the beginning without a consumer group.

    `read(topic, at_least=n)` waits until `n` records have arrived, then keeps reading
    up to the end offsets of that moment, so records that should not be there show up.
    Records of one partition keep their order.
    """

    async def read(
        topic: str, at_least: int = 0, timeout: float = 20.0
    ) -> list[ConsumerRecord[bytes, bytes]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=broker, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            records: list[ConsumerRecord[bytes, bytes]] = []
            async with asyncio.timeout(timeout):
                while len(records) < at_least:
                    for batch in (await consumer.getmany(timeout_ms=200)).values():
                        records += batch
                end = await consumer.end_offsets(partitions)
                while any([await consumer.position(tp) < end[tp] for tp in partitions]):
                    for batch in (await consumer.getmany(timeout_ms=200)).values():
                        records += batch
            return records
        finally:
            await consumer.stop()

    return read
