"""The service app's error shapes and readiness, without a database or a broker."""

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from chassis import logs
from chassis.app import KEEP_ALIVE_SECONDS, create_service_app, serve
from chassis.runtime import Runtime
from chassis.settings import ServiceSettings


class FakeDriverError(Exception):
    sqlstate = "23505"  # unique violation: a bug, not an outage


def raising(exc: Exception) -> APIRouter:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise exc

    return router


async def get_boom(exc: Exception) -> httpx.Response:
    settings = ServiceSettings(database_url="postgresql+asyncpg://x@127.0.0.1/x", port=1)
    app = create_service_app("test", settings, [raising(exc)])
    # No lifespan: the routes here need neither database nor broker.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/boom")


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError("Connect call failed ('127.0.0.1', 5432)"),
        OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
        # Every pooled connection busy for pool_timeout: the in-flight limit keeps this
        # queue short, and the request that still waits too long is refused, not queued.
        PoolTimeout("QueuePool limit of size 10 overflow 10 reached"),
    ],
    ids=repr,
)
async def test_an_unreachable_database_is_a_503_with_retry_after(exc: Exception) -> None:
    response = await get_boom(exc)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "temporarily unavailable" in response.json()["detail"]


async def test_other_database_errors_stay_500() -> None:
    response = await get_boom(IntegrityError("INSERT", {}, FakeDriverError()))
    assert response.status_code == 500


def runtime_with(fetch_all_metadata: Any) -> Runtime:
    producer = SimpleNamespace(client=SimpleNamespace(fetch_all_metadata=fetch_all_metadata))
    fake: Any = None
    return Runtime("test", fake, fake, fake, fake, producer=producer)


async def test_readiness_asks_the_broker_each_time() -> None:
    async def answers() -> None:
        return None

    async def refused() -> None:
        raise ConnectionError("broker down")

    async def hangs() -> None:
        await asyncio.sleep(60)

    assert await runtime_with(answers).broker_answers()
    assert not await runtime_with(refused).broker_answers()
    assert not await runtime_with(hangs).broker_answers(timeout=0.05)


async def test_readiness_is_false_before_the_clients_connected() -> None:
    fake: Any = None
    assert not await Runtime("test", fake, fake, fake, fake).broker_answers()


def test_the_server_keeps_idle_connections_longer_than_clients_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client reusing a connection the server is closing gets "server disconnected"."""
    ran: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda _app, **kwargs: ran.update(kwargs))
    monkeypatch.setattr(logs, "configure_logging", lambda *_args: None)  # root logger stays
    settings = ServiceSettings(database_url="postgresql+asyncpg://x@127.0.0.1/x", port=1)
    serve(create_service_app("test", settings, []), settings)
    client_expiry = httpx.Limits().keepalive_expiry
    assert client_expiry is not None
    assert ran["timeout_keep_alive"] == KEEP_ALIVE_SECONDS > client_expiry
