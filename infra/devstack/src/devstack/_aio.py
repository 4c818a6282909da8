"""Run a coroutine to completion from synchronous code, even inside a running event loop."""

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on a fresh event loop in a worker thread and return its result.

    The launcher's API is synchronous (a CLI and test fixtures call it), but a test
    may call it from inside its own event loop, where `asyncio.run` is refused.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="devstack-aio") as pool:
        return pool.submit(asyncio.run, coro).result()
