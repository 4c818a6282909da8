"""Fixtures shared by every package's integration tests: a real PostgreSQL and a real broker.

Both are started once per test session on free ports and stopped at its end. Also:
`publish`, which puts an event on a topic as another service's relay would, and
`serve`, which runs a service app in process (lifespan included) behind an HTTP client;
`events_on_topic`, which reads what a service published; `statements`, which notes the
SQL a test's `sessions` send.
"""

import asyncio
import contextlib
import hashlib
import os
import secrets
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chassis.kafka import create_producer
from chassis.outbox import new_envelope
from devstack._aio import run_sync
from devstack.broker import Broker
from devstack.ports import free_port
from devstack.postgres import PostgresServer
from devstack.topics import create_topics
from shared_contracts import Envelope

REPO = Path(__file__).parent


def pytest_configure() -> None:
    """Give each checkout its own temporary root unless one is set.

    Each session resets the root's `pytest-of-<user>` to mode 0700. Under a shared
    root, a session started beside a running one (another checkout's, say) then cuts
    the running session's PostgreSQL servers, which run as an unprivileged user, off
    from their own configuration.
    """
    # pytest reads the variable when a test first asks for a temporary directory.
    digest = hashlib.sha256(str(REPO).encode()).hexdigest()[:8]
    root = Path(tempfile.gettempdir()) / f"saga-tests-{digest}"
    root.mkdir(mode=0o755, exist_ok=True)
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", str(root))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("pg") / "data", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = Broker(free_port(), tmp_path_factory.mktemp("broker") / "broker.log")
    server.start()
    try:
        run_sync(create_topics(server.bootstrap_servers))
        yield server.bootstrap_servers
    finally:
        server.stop()


def alembic(service: str, url: str, *steps: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run Alembic commands for `service` against `url`, as the launcher does; each must pass."""
    env = {**os.environ, f"{service.upper()}_DATABASE_URL": url}
    results = []
    for step in steps:
        result = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", "alembic.ini", *step],
            cwd=REPO / "services" / service,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"alembic {' '.join(step)} ({service}): {result.stderr}"
        results.append(result)
    return results


@pytest.fixture(scope="session")
def migrations() -> Callable[..., list[subprocess.CompletedProcess[str]]]:
    """`migrations(service, url, ["downgrade", "base"], ...)`: run Alembic steps, each must pass."""
    return alembic


@pytest.fixture(scope="session")
def database_url(postgres: PostgresServer) -> Callable[[str], str]:
    """Factory: a fresh database for `service`, migrated to head; returns its URL."""

    def make(service: str) -> str:
        name = f"{service}_{secrets.token_hex(4)}"
        url = postgres.provision(name, name, secrets.token_hex(8))
        alembic(service, url, ["upgrade", "head"])
        return url

    return make


class Publish(Protocol):
    def __call__(self, topic: str, key: str, payload: BaseModel) -> Awaitable[Envelope]: ...


@pytest.fixture(scope="session")
async def publish(broker: str) -> AsyncIterator[Publish]:
    """Publish a v1 event on a topic, as another service's outbox relay would."""
    producer: AIOKafkaProducer = create_producer(broker)
    await producer.start()

    async def send(topic: str, key: str, payload: BaseModel) -> Envelope:
        envelope = new_envelope("test", key, payload)
        await producer.send_and_wait(topic, envelope.model_dump_json().encode(), key=key.encode())
        return envelope

    yield send
    await producer.stop()


class EventsOnTopic(Protocol):
    def __call__(self, topic: str, key: str, count: int) -> Awaitable[list[str]]: ...


@pytest.fixture(scope="session")
def events_on_topic(broker: str) -> EventsOnTopic:
    """`events_on_topic(topic, key, count)`: the types of the first `count` events with `key`.

    Read from the start of the topic by a consumer group of its own, as a new consumer
    of a service's events would; fails if they do not arrive within 20 s.
    """

    async def read(topic: str, key: str, count: int) -> list[str]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker,
            group_id=f"test-{uuid.uuid4()}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        found: list[str] = []
        try:
            async with asyncio.timeout(20):
                while len(found) < count:
                    for records in (await consumer.getmany(timeout_ms=500)).values():
                        found += [
                            Envelope.model_validate_json(r.value).event_type
                            for r in records
                            if r.key == key.encode()
                        ]
        finally:
            await consumer.stop()
        return found

    return read


@contextlib.asynccontextmanager
async def _serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


@pytest.fixture
def statements(sessions: async_sessionmaker[AsyncSession]) -> Iterator[list[tuple[str, int]]]:
    """Each statement that `sessions` (the test's own fixture) send from now on: its
    first three words and how many parameter sets."""
    sent: list[tuple[str, int]] = []
    engine = sessions.kw["bind"].sync_engine

    def note(_conn: Any, _cursor: Any, sql: str, parameters: Any, _ctx: Any, many: bool) -> None:
        sent.append((" ".join(sql.split()[:3]), len(parameters) if many else 1))

    event.listen(engine, "before_cursor_execute", note)
    yield sent
    event.remove(engine, "before_cursor_execute", note)


@pytest.fixture(scope="session")
def serve() -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]:
    """Run a service app in process, relay and consumer included, behind an HTTP client."""
    return _serve
