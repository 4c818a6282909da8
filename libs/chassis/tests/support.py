"""Helpers shared by the chassis integration tests."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    timeout: float = 40.0,
    watch: asyncio.Task[Any] | None = None,
) -> None:
    """Poll `condition` until true; fail at `timeout` or if `watch` stops early."""
    async with asyncio.timeout(timeout):
        while not await condition():
            if watch is not None and watch.done():
                watch.result()  # raises what the task died of
                pytest.fail("the background task stopped")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def in_background(job: Coroutine[Any, Any, None]) -> AsyncIterator[asyncio.Task[None]]:
    """Run `job` (a relay's or consumer's `run()`) for the duration of the block, then cancel it."""
    task = asyncio.create_task(job)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def count(sessions: async_sessionmaker[AsyncSession], table: str) -> int:
    """The rows `table` holds, read in a transaction of its own."""
    async with sessions() as session:
        return int(await session.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)
