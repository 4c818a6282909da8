"""The engine's pool against a real PostgreSQL that restarts; what a transaction holds
until its commit (`TransactionLocal`)."""

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from chassis.db import POOL_SIZE, TransactionLocal, after_commit, create_engine
from devstack.ports import free_port
from devstack.postgres import PostgresServer

from ..support import count

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


_INSERT = sa.text("INSERT INTO applied (event_id, n) VALUES (:event_id, :n)")


def _insert_applied(session: Session, rows: list[dict[str, object]]) -> None:
    session.execute(_INSERT, rows)


_ROWS = TransactionLocal("chassis.tests.rows", list, _insert_applied)
"""Rows of `applied` a transaction saves, inserted as it commits."""


async def test_a_transaction_local_is_written_at_the_commit_and_then_gone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        assert _ROWS.find(session) is None, "nothing is made before the first get"
        _ROWS.get(session).append({"event_id": uuid.uuid4(), "n": 1})
        _ROWS.get(session).append({"event_id": uuid.uuid4(), "n": 2})  # the same list
        assert await count(sessions, "applied") == 0, "nothing is written before the commit"
    assert _ROWS.find(session) is None
    assert await count(sessions, "applied") == 2

    async with sessions() as session:  # a second transaction of one session starts empty
        assert _ROWS.get(session) == []


async def test_a_rollback_or_a_close_forgets_a_transaction_local_unwritten(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        _ROWS.get(session).append({"event_id": uuid.uuid4(), "n": 1})
        await session.rollback()  # before any statement: the get began the transaction
        assert _ROWS.find(session) is None
        await session.commit()

        _ROWS.get(session).append({"event_id": uuid.uuid4(), "n": 2})
        await session.close()
        assert _ROWS.find(session) is None
        await session.commit()
    assert await count(sessions, "applied") == 0


async def test_a_failing_write_fails_the_commit_and_rolls_it_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            await session.execute(_INSERT, {"event_id": uuid.uuid4(), "n": 1})
            _ROWS.get(session).append({"event_id": uuid.uuid4(), "n": None})  # NOT NULL
    assert _ROWS.find(session) is None
    assert await count(sessions, "applied") == 0, "the transaction's other changes are rolled back"


async def test_after_commit_calls_back_on_the_commit_alone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    called: list[str] = []
    async with sessions() as session:
        after_commit(session, lambda: called.append("rolled back"))
        await session.rollback()
        after_commit(session, lambda: called.append("closed"))
        await session.close()
        after_commit(session, lambda: called.append("committed"))
        await session.commit()
        await session.commit()  # a second commit: no callback registered for it
    assert called == ["committed"]
