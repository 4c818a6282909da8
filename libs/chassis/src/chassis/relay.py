"""The outbox relay: publishes committed outbox rows to Kafka, in order, then deletes them."""

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.outbox import Outbox
from chassis.retry import Backoff
from chassis.tables import outbox

log = logging.getLogger(__name__)

PUBLISHED = Counter("outbox_published_total", "Outbox events published to Kafka", ["topic"])

# Any constant works: it only has to be the same for every relay of one database.
_RELAY_LOCK_ID = 0x0B0C5
_IDLE_POLL_SECONDS = 1.0


class OutboxRelay:
    """Moves outbox rows to Kafka.

    One batch is one transaction: lock, read the oldest rows, send them and wait for
    the broker's acks, delete them, commit. A crash before the commit leaves the rows
    to be sent again (at-least-once; consumers deduplicate). A transaction-scoped
    advisory lock lets only one relay per database run at a time, which keeps the
    events of each key in the order they were written.
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

    async def run(self) -> None:
        """Publish forever; wake on a local commit or poll for other writers' rows."""
        backoff = Backoff()
        while True:
            self._signal.committed.clear()
            try:
                sent = await self.publish_batch()
            except Exception:
                delay = backoff.next_delay()
                log.warning("outbox relay failed; retrying in %.1fs", delay, exc_info=True)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            if sent < self._batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._signal.committed.wait(), _IDLE_POLL_SECONDS)

    async def publish_batch(self) -> int:
        """Publish one batch of the oldest rows; return how many were sent."""
        async with self._sessions.begin() as session:
            await session.execute(select(func.pg_advisory_xact_lock(_RELAY_LOCK_ID)))
            rows = (
                await session.execute(
                    select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.envelope)
                    .order_by(outbox.c.id)
                    .limit(self._batch_size)
                )
            ).all()
            if not rows:
                return 0
            # send() only enqueues; gathering the futures waits for every ack.
            acks = [
                await self._producer.send(row.topic, row.envelope.encode(), key=row.key.encode())
                for row in rows
            ]
            await asyncio.gather(*acks)
            await session.execute(delete(outbox).where(outbox.c.id.in_([row.id for row in rows])))
        for row in rows:
            PUBLISHED.labels(row.topic).inc()
        return len(rows)
