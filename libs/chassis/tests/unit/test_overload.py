"""The in-flight limit: admits `limit` requests, refuses the rest at once, never the probes."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from prometheus_client import REGISTRY
from starlette.types import Receive, Scope, Send

from chassis.app import create_service_app
from chassis.overload import InFlightLimit
from chassis.settings import ServiceSettings


class Gate:
    """An ASGI app whose requests wait until the gate opens; it raises on /boom."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, _receive: Receive, send: Send) -> None:
        self.entered += 1
        await self.open.wait()
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})


def refused_total() -> float:
    return REGISTRY.get_sample_value("http_requests_refused_total") or 0.0


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def limited(gate: Gate) -> InFlightLimit:
    return InFlightLimit(gate, limit=2, exempt={"/health/live"})


@pytest.fixture
async def http(limited: InFlightLimit) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=limited, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def fill(http: httpx.AsyncClient, gate: Gate, n: int) -> list[asyncio.Task[httpx.Response]]:
    """Start `n` requests and wait until all of them are inside the app."""
    tasks = [asyncio.create_task(http.get("/work")) for _ in range(n)]
    async with asyncio.timeout(5):
        while gate.entered < n:
            await asyncio.sleep(0.001)
    return tasks


async def test_requests_beyond_the_limit_are_refused_at_once_with_retry_after(http, gate):
    admitted = await fill(http, gate, 2)
    before = refused_total()

    refused = await http.post("/work", json={"a": "body it never reads"})

    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert "overloaded" in refused.json()["detail"]
    assert refused_total() == before + 1
    assert gate.entered == 2, "a refused request must not reach the app"
    gate.open.set()
    assert [(await task).status_code for task in admitted] == [200, 200]


async def test_a_finished_request_frees_its_place(http, gate, limited):
    admitted = await fill(http, gate, 2)
    gate.open.set()
    await asyncio.gather(*admitted)

    assert limited.in_flight == 0
    assert (await http.get("/work")).status_code == 200


async def test_a_request_that_fails_frees_its_place_too(http, gate, limited):
    gate.open.set()

    assert (await http.get("/boom")).status_code == 500
    assert limited.in_flight == 0


async def test_exempt_paths_answer_while_the_limit_is_reached(http, gate, limited):
    admitted = await fill(http, gate, 2)
    probe = asyncio.create_task(http.get("/health/live"))
    async with asyncio.timeout(5):
        while gate.entered < 3:
            await asyncio.sleep(0.001)

    assert limited.in_flight == 2, "exempt requests are not counted"
    gate.open.set()
    assert (await probe).status_code == 200
    await asyncio.gather(*admitted)


def test_the_limit_must_admit_something(gate):
    with pytest.raises(ValueError, match="at least 1"):
        InFlightLimit(gate, limit=0)


async def test_every_service_app_refuses_beyond_its_setting_but_not_its_probes():
    entered, release = asyncio.Event(), asyncio.Event()
    router = APIRouter()

    @router.get("/slow")
    async def slow() -> dict[str, str]:
        entered.set()
        await release.wait()
        return {"status": "done"}

    settings = ServiceSettings(
        database_url="postgresql+asyncpg://x@127.0.0.1/x", port=1, max_concurrent_requests=1
    )
    app = create_service_app("test", settings, [router])
    # No lifespan: neither /slow, /health/live nor /metrics needs the database or the broker.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        busy = asyncio.create_task(client.get("/slow"))
        await asyncio.wait_for(entered.wait(), 5)

        refused = await client.get("/slow")
        live, metrics = await client.get("/health/live"), await client.get("/metrics")

        release.set()
        assert (await busy).status_code == 200
    assert refused.status_code == 503
    assert live.status_code == 200
    assert metrics.status_code == 200
    assert "http_requests_refused_total" in metrics.text
