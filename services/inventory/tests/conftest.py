"""Inventory test fixtures on top of the root `broker`, `database_url` and `serve` fixtures."""

import contextlib
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.db import create_engine, create_sessionmaker
from inventory_service.main import create_app
from inventory_service.settings import Settings

Serve = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="module")
async def service_client(
    database_url: Callable[[str], str], broker: str, serve: Serve
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to the whole service (API, consumer, relay) on a fresh database."""
    settings = Settings(
        database_url=database_url("inventory"), kafka_bootstrap_servers=broker, port=0
    )
    async with serve(create_app(settings)) as client:
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
