"""The load generator spreads its orders evenly over the order service's processes.

Two stand-ins for order service processes (an HTTP server each, in this test's loop)
count what they are sent; the load generator runs as the benchmark runs it.
"""

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest

LOADGEN = Path(__file__).with_name("loadgen.py")


class OrderStandIn:
    """Answers every `POST /v1/orders` 202 with a new order id, and counts them."""

    def __init__(self) -> None:
        self.orders = 0
        self._connections: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *_: object) -> None:
        self._server.close()
        # Each connection ends when the load generator's side closes; wait for all of
        # them, so that none is left open behind the test.
        await asyncio.wait_for(asyncio.gather(*self._connections), 10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
                fields = dict(line.split(": ", 1) for line in head[1:] if line)
                await reader.readexactly(int(fields["Content-Length"]))
                self.orders += 1
                body = json.dumps({"order_id": str(uuid.uuid4())}).encode()
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: %d\r\n\r\n" % len(body))
                writer.write(body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the load generator closed its connection
        finally:
            writer.close()


@pytest.mark.parametrize("load", [["--rate", "40"], ["--concurrency", "4"]])
async def test_orders_are_spread_evenly_over_every_url(tmp_path: Path, load: list[str]) -> None:
    first, second = OrderStandIn(), OrderStandIn()
    async with first as first_url, second as second_url:
        loadgen = await asyncio.create_subprocess_exec(
            sys.executable,
            str(LOADGEN),
            f"--url={first_url}",
            f"--url={second_url}",
            "--skus=a,b",
            "--customers=c1,c2",
            "--seconds=0.5",
            *load,
            f"--out={tmp_path / 'answers.jsonl'}",
        )
        assert await asyncio.wait_for(loadgen.wait(), 30) == 0
    assert first.orders > 0 and second.orders > 0
    if load[0] == "--rate":  # orders 0 to 19 of the schedule, by turns
        assert (first.orders, second.orders) == (10, 10)
    else:  # two clients each, each waiting for its answer
        assert abs(first.orders - second.orders) <= 2
    answers = (tmp_path / "answers.jsonl").read_text().splitlines()
    assert sum(json.loads(line).get("status") == 202 for line in answers) == (
        first.orders + second.orders
    )
