"""The health poller tells the observer when the broker is back, so it reads anew."""

import asyncio
from collections.abc import Callable

from devstack.ports import free_port
from saga_console.observer import HealthPoller


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not check():
            await asyncio.sleep(0.01)


async def test_the_broker_coming_back_is_reported_once_per_return() -> None:
    port = free_port()
    returns: list[bool | None] = []
    poller = HealthPoller(
        {},
        f"127.0.0.1:{port}",
        lambda: None,
        broker_returned=lambda: returns.append(poller.broker_up),
        interval=0.05,
    )
    task = asyncio.create_task(poller.run())
    try:
        await until(lambda: poller.broker_up is False)  # nothing listens on the port: down
        for _ in range(2):
            server = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", port)
            await until(lambda: poller.broker_up is True)
            await asyncio.sleep(0.2)  # up for several more rounds: one return, not one a round
            server.close()
            await server.wait_closed()
            await until(lambda: poller.broker_up is False)
        assert returns == [True, True]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
