"""Group commit for placing orders: the requests waiting while one transaction runs share the next.

Placing one order alone is a BEGIN, a catalog read, three inserts, the outbox insert and
a COMMIT: seven round trips to the database, and a session of the pool. Under load many
requests are in flight at once, and a dozen orders placed together take the same seven
round trips and one session. So one task places the orders: it takes every request
waiting, places them in one transaction (`handlers.place_orders`), answers each, and
starts again with those that arrived meanwhile. Nothing waits for a batch to fill: a
request that finds the task idle is placed at once, alone, so at low rates nothing
changes; under load the batches grow by themselves, and near saturation a request may
wait a few milliseconds for the batch in hand (`docs/performance.md`). Each request
still gets its own answer: its order, or the error that refused it (an unknown SKU, an
idempotency key reused with another body)."""

import asyncio

from prometheus_client import Histogram

from chassis.runtime import Runtime
from order_service.domain.model import Order
from order_service.service_layer import handlers
from order_service.service_layer.handlers import Placement

MAX_BATCH = 100
"""At most this many orders per transaction; the rest wait for the next one."""

BATCH_SIZE = Histogram(
    "order_intake_batch_size",
    "Orders placed per transaction by the intake",
    buckets=(1, 2, 5, 10, 20, 50, 100),
)


class ShuttingDown(Exception):
    """The service stopped before the order's transaction ended: answered 503, to retry.

    A retry with the same `Idempotency-Key` is safe whether or not the order was stored.
    """

    def __init__(self) -> None:
        super().__init__("the order service is shutting down; retry with the same Idempotency-Key")


class Intake:
    """Places the orders that requests ask for, the ones waiting together in one transaction."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Placement, asyncio.Future[Order]]] = []
        self._arrived = asyncio.Event()

    async def place(self, placement: Placement) -> Order:
        """Place an order with the next transaction; its order, or raise what refused it."""
        answer: asyncio.Future[Order] = asyncio.get_running_loop().create_future()
        self._waiting.append((placement, answer))
        self._arrived.set()
        return await answer

    async def run(self, runtime: Runtime) -> None:
        """Place what is waiting, batch after batch, until cancelled."""
        batch: list[tuple[Placement, asyncio.Future[Order]]] = []
        try:
            while True:
                await self._arrived.wait()
                self._arrived.clear()
                while self._waiting:
                    batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                    await self._place(runtime, batch)
        finally:
            # Cancelled at shutdown, after the server has answered its requests: any
            # left, the batch in hand included, were never placed (a transaction
            # cancelled mid-way rolls back), and their clients may retry. Those of the
            # batch already answered are skipped (`_answer`).
            left, self._waiting = [*batch, *self._waiting], []
            for _, answer in left:
                _answer(answer, ShuttingDown())

    @staticmethod
    async def _place(
        runtime: Runtime, batch: list[tuple[Placement, "asyncio.Future[Order]"]]
    ) -> None:
        BATCH_SIZE.observe(len(batch))
        results: list[Order | Exception]
        try:
            results = await handlers.place_orders(
                runtime.sessions, runtime.outbox, [placement for placement, _ in batch]
            )
        except Exception as failed:  # the database's: every request of the batch gets it
            results = [failed] * len(batch)
        for (_, answer), result in zip(batch, results, strict=True):
            _answer(answer, result)


def _answer(answer: "asyncio.Future[Order]", result: Order | Exception) -> None:
    if answer.done():  # its request was cancelled meanwhile
        return
    if isinstance(result, Exception):
        answer.set_exception(result)
    else:
        answer.set_result(result)
