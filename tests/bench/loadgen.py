"""The benchmark's load generator: a process of its own that places orders over HTTP.

    python tests/bench/loadgen.py --url URL [--url URL2 ...] --skus a,b --customers c1,c2 \
        --seconds 70 --warmup 10 (--rate 200 | --concurrency 64) --out requests.jsonl

With several `--url`s (processes of the order service), the load is spread over them
evenly: open loop, order i goes to URL i mod n; flat out, client i to URL i mod n.

Times in the output are Unix times (seconds), comparable with the order service's
timestamps. Open loop (`--rate`): order i is sent at start + i / rate whether or not earlier ones
were answered, as independent clients would, until `--seconds` have passed (at most
`MAX_IN_FLIGHT` wait for an answer at once: a service slower than the rate gets fewer
orders than scheduled, and the results say how many were sent). Flat out (`--concurrency`): that many
clients each place an order as soon as their previous one was answered. A refused
order (503, `Retry-After`) is retried by its client after the wait it asks for, with
the same `Idempotency-Key`. Each answer becomes one JSON line in `--out`: when it was
sent (seconds since start), its HTTP latency, status and order id; the last line holds
this process's own CPU seconds after the first `--warmup` seconds (the benchmark's
measured window), so the benchmark can show that the load generator is not the
bottleneck. A progress line goes to standard error every 5 s.

It speaks HTTP/1.1 itself (`Http`), on keep-alive connections: httpx's async client
cost about 2 ms of CPU per request here, a quarter of a core at 100 orders/s taken
from the stack it measures; this client costs a few hundredths of that.
"""

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

PROGRESS_EVERY = 5.0
MAX_IN_FLIGHT = 512
"""Open loop: requests in flight at most; past it the generator itself would fall behind."""
TIMEOUT = 60.0
"""Seconds a request may take before it counts as failed."""

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Http:
    """Just enough HTTP/1.1 for the order service: POST JSON, read an answer of known length.

    Connections are kept open and reused, one request at a time each, and opened
    as needed: a flat-out client ends up with one, the open loop with up to
    `MAX_IN_FLIGHT`.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._idle: list[Connection] = []

    async def post(
        self, path: str, body: Any, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """Send one request; its status, headers (lower-case names) and body."""
        data = json.dumps(body).encode()
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(data)}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        async with asyncio.timeout(TIMEOUT):
            reader, writer = (
                self._idle.pop()
                if self._idle
                else await asyncio.open_connection(self.host, self.port)
            )
            try:
                writer.write("\r\n".join([*lines, "", ""]).encode() + data)
                status, *fields = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
                answer = {
                    name.lower(): value.strip()
                    for name, _, value in (field.partition(":") for field in fields if field)
                }
                content = await reader.readexactly(int(answer.get("content-length", "0")))
            except BaseException:
                writer.close()  # a half-read answer leaves the connection unusable
                raise
        if answer.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        return int(status.split(" ", 2)[1]), answer, content

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


@dataclass
class Load:
    """What one run sends and where it writes what it saw."""

    processes: list[Http]
    """One per order service process: the load is spread over them evenly."""
    skus: list[str]
    customers: list[str]
    out: IO[str]
    started: float = field(default_factory=time.monotonic)
    epoch: float = field(default_factory=time.time)
    """The Unix time of `started`: answers are written in Unix time."""
    sent: int = 0
    accepted: int = 0
    refused: int = 0

    def now(self) -> float:
        return time.monotonic() - self.started

    def process(self, n: int) -> Http:
        """The order service process that order n (open loop) or client n (flat out) uses."""
        return self.processes[n % len(self.processes)]

    async def place(self, process: Http) -> None:
        """Place one order with `process`, retrying a refusal after its Retry-After; record each answer."""
        body = {
            "customer_id": random.choice(self.customers),
            "items": [{"sku": random.choice(self.skus), "quantity": 1}],
        }
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        self.sent += 1
        while True:
            sent_at = self.now()
            try:
                status, answer, content = await process.post("/v1/orders", body, headers)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                self._write(sent_at, type(exc).__name__, None)
                await asyncio.sleep(0.1)
                continue
            order_id = json.loads(content).get("order_id") if status == 202 else None
            self._write(sent_at, status, order_id)
            if status == 202:
                self.accepted += 1
                return
            self.refused += 1
            await asyncio.sleep(float(answer.get("retry-after", "0.2")))

    def _write(self, sent_at: float, status: int | str, order_id: str | None) -> None:
        latency = self.now() - sent_at
        record = {
            "t": round(self.epoch + sent_at, 4),
            "latency": round(latency, 5),
            "status": status,
        }
        if order_id:
            record["order_id"] = order_id
        self.out.write(json.dumps(record) + "\n")


async def open_loop(load: Load, rate: float, seconds: float) -> None:
    in_flight: set[asyncio.Task[None]] = set()
    for i in itertools.count():
        due = i / rate
        if due >= seconds or load.now() >= seconds:
            break  # the schedule is over, whether or not the service kept up with it
        await asyncio.sleep(max(0.0, due - load.now()))
        if len(in_flight) >= MAX_IN_FLIGHT:
            await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(load.place(load.process(i)))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)


async def flat_out(load: Load, concurrency: int, seconds: float) -> None:
    async def client(process: Http) -> None:
        while load.now() < seconds:
            await load.place(process)

    await asyncio.gather(*(client(load.process(i)) for i in range(concurrency)))


async def progress(load: Load) -> None:
    last_sent, last_at = 0, 0.0
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        now = load.now()
        rate = (load.sent - last_sent) / (now - last_at)
        print(
            f"[loadgen] t={now:5.0f}s sent {load.sent} ({rate:.0f}/s), "
            f"accepted {load.accepted}, refused answers {load.refused}",
            file=sys.stderr,
            flush=True,
        )
        last_sent, last_at = load.sent, now


async def cpu_seconds_at(seconds: float) -> float:
    """This process's CPU time (user and system), read `seconds` from now."""
    await asyncio.sleep(seconds)
    return time.process_time()


async def main(args: argparse.Namespace) -> None:
    processes = [Http(url) for url in args.url]
    with open(args.out, "w", encoding="utf-8") as out:
        try:
            load = Load(processes, args.skus.split(","), args.customers.split(","), out)
            warmed_up = asyncio.create_task(cpu_seconds_at(args.warmup))
            reporting = asyncio.create_task(progress(load))
            if args.rate:
                await open_loop(load, args.rate, args.seconds)
            else:
                await flat_out(load, args.concurrency, args.seconds)
            reporting.cancel()
        finally:
            for process in processes:
                process.close()
        summary = {"cpu_seconds_after_warmup": time.process_time() - await warmed_up}
        out.write(json.dumps({"loadgen": summary}) + "\n")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url", action="append", required=True, help="the order service (repeatable: each process)"
    )
    parser.add_argument("--skus", required=True, help="comma-separated SKUs to order")
    parser.add_argument("--customers", required=True, help="comma-separated customer ids")
    parser.add_argument("--seconds", type=float, required=True, help="warm-up included")
    parser.add_argument(
        "--warmup", type=float, default=0.0, help="seconds before its CPU time counts"
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--rate", type=float, help="open loop: orders per second")
    mode.add_argument("--concurrency", type=int, help="flat out: clients")
    parser.add_argument("--out", required=True, help="where the answers go (JSON lines)")
    args = parser.parse_args(argv)
    if not 0 <= args.warmup <= args.seconds:
        parser.error("--warmup must be between 0 and --seconds")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
