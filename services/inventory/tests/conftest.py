"""Inventory test fixtures on top of the root `broker` and `database_url` fixtures."""

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.db import create_engine, create_sessionmaker
from inventory_service.main import create_app
from inventory_service.settings import Settings


@pytest.fixture(scope="module")
async def app(database_url: Callable[[str], str], broker: str) -> AsyncIterator[FastAPI]:
    """The whole service (API, consumer, relay) on a fresh database, lifespan running."""
    settings = Settings(
        database_url=database_url("inventory"), kafka_bootstrap_servers=broker, port=0
    )
    service = create_app(settings)
    async with service.router.lifespan_context(service):
        yield service


@pytest.fixture(scope="module")
async def service_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to `app` in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture(scope="module")
async def sessions(
    database_url: Callable[[str], str],
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on a fresh database with no relay running, so outbox rows stay to be read."""
    engine = create_engine(database_url("inventory"))
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()
