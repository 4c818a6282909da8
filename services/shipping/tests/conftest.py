"""Fixtures of the shipping service's tests, on top of the root `broker`, `database_url`, `serve`."""

import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.db import create_engine, create_sessionmaker
from shipping_service.main import create_app
from shipping_service.settings import Settings

Serve = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="module")
def service_database(database_url: Callable[[str], str]) -> str:
    """The URL of a fresh database of the service's own, migrated to head."""
    return database_url("shipping")


@pytest.fixture(scope="module")
async def client(
    service_database: str, broker: str, serve: Serve
) -> AsyncIterator[httpx.AsyncClient]:
    """The shipping app, lifespan running (relay and consumer), on its own database."""
    settings = Settings(database_url=service_database, kafka_bootstrap_servers=broker, port=0)
    async with serve(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
async def sessions(
    database_url: Callable[[str], str],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a fresh database of its own, with no relay emptying the outbox."""
    engine = create_engine(database_url("shipping"))
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()
