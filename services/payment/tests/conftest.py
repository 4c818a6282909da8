"""Fixtures of the payment service's tests, on top of the root `broker`, `database_url`, `serve`."""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.consumer import Delivery
from chassis.db import create_engine, create_sessionmaker
from chassis.outbox import Outbox, new_envelope
from chassis.tables import outbox
from payment_service.main import create_app
from payment_service.service_layer.handlers import lock_charged_accounts
from payment_service.settings import Settings
from shared_contracts import Envelope

Serve = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]
Deliver = Callable[[Callable[[Delivery, Any], Awaitable[None]], BaseModel], Awaitable[Envelope]]


@pytest.fixture(scope="session")
async def client(
    database_url: Callable[[str], str], broker: str, serve: Serve
) -> AsyncIterator[httpx.AsyncClient]:
    """The payment app, lifespan running (relay and consumer), on its own fresh database."""
    settings = Settings(
        database_url=database_url("payment"), kafka_bootstrap_servers=broker, port=0
    )
    async with serve(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="session")
async def sessions(
    database_url: Callable[[str], str],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a fresh database of its own, with no relay emptying the outbox."""
    engine = create_engine(database_url("payment"))
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def deliver(sessions: async_sessionmaker[AsyncSession]) -> Deliver:
    """Apply `payload` through `handler` in one transaction, as the consumer does: the
    service's prefetch first."""

    async def apply(
        handler: Callable[[Delivery, Any], Awaitable[None]], payload: BaseModel
    ) -> Envelope:
        envelope = new_envelope("order", str(getattr(payload, "order_id", "")), payload)
        async with sessions.begin() as session:
            await lock_charged_accounts(session, [payload])
            await handler(Delivery(session, envelope, Outbox("payment")), payload)
        return envelope

    return apply


@pytest.fixture
def outbox_events(
    sessions: async_sessionmaker[AsyncSession],
) -> Callable[[str], Awaitable[list[tuple[str, str, Envelope]]]]:
    """The (topic, key, envelope) rows waiting in the outbox for a key, oldest first."""

    async def read(key: str) -> list[tuple[str, str, Envelope]]:
        async with sessions.begin() as session:
            rows = (
                await session.execute(
                    sa.select(outbox.c.topic, outbox.c.key, outbox.c.envelope)
                    .where(outbox.c.key == key)
                    .order_by(outbox.c.id)
                )
            ).all()
        return [(r.topic, r.key, Envelope.model_validate_json(r.envelope)) for r in rows]

    return read
