"""What a running service owns: engine, sessions, outbox, producer and background tasks."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chassis.consumer import Handlers, InboxConsumer, Prefetch
from chassis.db import create_engine, create_sessionmaker
from chassis.kafka import create_producer
from chassis.outbox import Outbox
from chassis.relay import OutboxRelay
from chassis.retry import Backoff
from chassis.settings import ServiceSettings

log = logging.getLogger(__name__)

_GRACE_SECONDS = 5.0
"""How long shutdown waits for the consumer to finish its event (then it is cancelled)."""


@dataclass
class Runtime:
    """Resources built by the `lifespan` and shared by routes and background tasks."""

    name: str
    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    producer: AIOKafkaProducer | None = None
    consumer: InboxConsumer | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def broker_connected(self) -> bool:
        """True once the producer and (if any) the consumer have reached the broker."""
        consumer_ok = self.consumer is None or self.consumer.connected
        return self.producer is not None and consumer_ok

    async def broker_answers(self, timeout: float = 2.0) -> bool:
        """True if the clients have connected and the broker answers a metadata request now.

        `broker_connected` only says the clients connected once: after that aiokafka
        reconnects by itself and never tells us, so a broker that went away would go
        unnoticed. One metadata request is cheap enough for every readiness probe.
        """
        if not self.broker_connected:
            return False
        assert self.producer is not None
        try:
            async with asyncio.timeout(timeout):
                await self.producer.client.fetch_all_metadata()
        except Exception:
            return False
        return True


BackgroundTask = Callable[[Runtime], Coroutine[Any, Any, None]]
"""A service's own long-running job, e.g. the order service's saga timeout sweep."""


@contextlib.asynccontextmanager
async def running(
    name: str,
    settings: ServiceSettings,
    handlers: Handlers,
    topics: Sequence[str],
    background: Sequence[BackgroundTask] = (),
    prefetch: Prefetch | None = None,
) -> AsyncIterator[Runtime]:
    """Build the runtime, start relay, consumer and `background`; tear all down on exit."""
    engine = create_engine(settings.database_url)
    runtime = Runtime(name, settings, engine, create_sessionmaker(engine), Outbox(name))
    if topics:
        runtime.consumer = InboxConsumer(
            name=settings.kafka_group_id or name,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topics=topics,
            handlers=handlers,
            sessions=runtime.sessions,
            outbox=runtime.outbox,
            producer=lambda: runtime.producer,
            max_attempts=settings.consumer_max_attempts,
            prefetch=prefetch,
        )
        consuming = asyncio.create_task(runtime.consumer.run(), name="consumer")
        runtime.tasks.append(consuming)
    runtime.tasks.append(asyncio.create_task(_relay(runtime), name="relay"))
    runtime.tasks += [asyncio.create_task(job(runtime), name=f"{name}-job") for job in background]
    try:
        yield runtime
    finally:
        if runtime.consumer is not None:
            # Let the consumer finish the event in hand and commit its offsets.
            runtime.consumer.stop()
            await asyncio.wait([consuming], timeout=_GRACE_SECONDS)
        for task in runtime.tasks:
            task.cancel()
        # Cancelling mid-event is safe all the same: its transaction rolls back, its
        # offset is not committed, and it is applied after restart.
        await asyncio.gather(*runtime.tasks, return_exceptions=True)
        if runtime.producer is not None:
            await runtime.producer.stop()
        await engine.dispose()


async def _relay(runtime: Runtime) -> None:
    backoff = Backoff()
    while runtime.producer is None:
        producer = create_producer(runtime.settings.kafka_bootstrap_servers)
        try:
            await producer.start()
        except Exception:
            await producer.stop()
            delay = backoff.next_delay()
            log.warning("cannot reach the broker; retrying in %.1fs", delay, exc_info=True)
            await asyncio.sleep(delay)
            continue
        runtime.producer = producer
    await OutboxRelay(runtime.sessions, runtime.producer, runtime.outbox).run()


async def get_runtime(request: Request) -> Runtime:
    """FastAPI dependency: the runtime the `lifespan` stored on the app.

    `async` although it awaits nothing: FastAPI runs a plain `def` dependency in a worker
    thread, two thread switches per request for reading one attribute.
    """
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
