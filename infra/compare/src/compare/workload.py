"""The workload both designs get: the same shop, order mix, rate and duration, one client.

Each cell of the comparison has a shop of its own (its SKUs and customers carry the
cell's prefix), so cells can share a running system without touching each other's
numbers. The client is the same for both designs and as plain as the monolith's own
error handling: one `POST` per order, no retry; any answer but the design's success
status is a failed order.
"""

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

HAPPY = "happy"
OUT_OF_STOCK = "out_of_stock"
DECLINED = "declined"

MIX: dict[str, int] = {HAPPY: 85, OUT_OF_STOCK: 10, DECLINED: 5}
"""Kinds of order and their weights (percent). Only HAPPY orders should succeed."""

PROGRESS_EVERY = 5.0


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    unit_price_cents: int
    stock: int


@dataclass(frozen=True)
class Order:
    """One order of the workload: what kind it is, who places it, what it asks for."""

    kind: str
    customer_id: str
    items: tuple[tuple[str, int], ...]

    def body(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "items": [{"sku": sku, "quantity": quantity} for sku, quantity in self.items],
        }


@dataclass
class Answer:
    """What the client saw for one order."""

    order: Order
    sent_at: float
    """Unix time, comparable with the services' own timestamps."""
    latency: float
    """Seconds until the HTTP answer."""
    status: int | str
    """The HTTP status, or the name of the transport error."""
    order_id: str | None


@dataclass(frozen=True)
class Shop:
    """What one cell sells and to whom; nothing runs out unless an order is meant to fail."""

    prefix: str
    rare_stock: int = 3
    customers: int = 10

    @property
    def products(self) -> list[Product]:
        return [
            Product(f"{self.prefix}-widget", "Widget", 1_250, 10**9),
            Product(f"{self.prefix}-gadget", "Gadget", 4_999, 10**9),
            # Out-of-stock orders ask for more than this, so it never sells.
            Product(f"{self.prefix}-rare", "Rare", 9_900, self.rare_stock),
        ]

    @property
    def accounts(self) -> dict[str, int]:
        """Rich customers who never run out, and one who cannot pay for anything."""
        rich = {f"{self.prefix}-c{i:02}": 10**12 for i in range(self.customers)}
        return rich | {self.poor: 500}

    @property
    def poor(self) -> str:
        return f"{self.prefix}-poor"

    def order(self, kind: str, rng: random.Random) -> Order:
        widget, gadget, rare = (p.sku for p in self.products)
        customer = f"{self.prefix}-c{rng.randrange(self.customers):02}"
        items = [(widget, rng.randint(1, 3))]
        if rng.random() < 0.5:
            items.append((gadget, rng.randint(1, 2)))
        if kind == OUT_OF_STOCK:
            items.append((rare, self.rare_stock + rng.randint(1, 5)))
        elif kind == DECLINED:
            customer = self.poor  # 500 cents: not enough for one widget
        return Order(kind, customer, tuple(items))

    def orders(self, count: int, seed: int) -> list[Order]:
        """`count` orders drawn from `MIX`, the same for every design given the seed."""
        rng = random.Random(seed)
        kinds = rng.choices(list(MIX), list(MIX.values()), k=count)
        return [self.order(kind, rng) for kind in kinds]


Place = Callable[[Order], Coroutine[Any, Any, Answer]]


async def timed(
    order: Order, send: Callable[[], Awaitable[tuple[int, str | None]]], errors: type[Exception]
) -> Answer:
    """Send one order and time it; a transport error (`errors`) is an answer too."""
    sent_at, started = time.time(), time.monotonic()
    try:
        status, order_id = await send()
    except errors as exc:
        return Answer(order, sent_at, time.monotonic() - started, type(exc).__name__, None)
    return Answer(order, sent_at, time.monotonic() - started, status, order_id)


async def open_loop(
    place: Place, orders: list[Order], rate: float, progress: Callable[[str], None]
) -> list[Answer]:
    """Send order i at i / `rate` s whether or not earlier ones were answered."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks: list[asyncio.Task[Answer]] = []

    async def report() -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            answered = sum(t.done() for t in tasks)
            progress(
                f"t={loop.time() - started:4.0f}s sent {len(tasks)}/{len(orders)}, answered {answered}"
            )

    reporter = asyncio.create_task(report())
    try:
        for i, order in enumerate(orders):
            await asyncio.sleep(max(0.0, started + i / rate - loop.time()))
            tasks.append(asyncio.create_task(place(order)))
        return list(await asyncio.gather(*tasks))
    finally:
        reporter.cancel()


def idempotency_key() -> str:
    return uuid.uuid4().hex
