"""The engine's pool against a real PostgreSQL that restarts."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from chassis.db import POOL_SIZE, create_engine
from devstack.ports import free_port
from devstack.postgres import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    """A server of this test's own, since the test restarts it."""
    server = PostgresServer(tmp_path / "data", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_the_pool_replaces_connections_a_database_restart_closed(
    own_postgres: PostgresServer,
) -> None:
    engine = create_engine(own_postgres.provision("pool", "pool", "secret"))

    async def backends() -> set[int]:
        async def one() -> int:
            async with engine.connect() as connection:
                pid = await connection.scalar(sa.text("SELECT pg_backend_pid()"))
                await asyncio.sleep(0.05)  # held, so that each call takes its own connection
                return int(pid or 0)

        return set(await asyncio.gather(*(one() for _ in range(POOL_SIZE))))

    try:
        before = await backends()
        assert len(before) == POOL_SIZE
        assert await backends() == before, "the connections stay open between uses"
        await asyncio.to_thread(own_postgres.stop)
        await asyncio.to_thread(own_postgres.start)
        after = await backends()  # no statement fails: closed connections are replaced first
        assert len(after) == POOL_SIZE
        assert not after & before
    finally:
        await engine.dispose()
