"""The intake's batching and answers, with `place_orders` replaced by a fake (no I/O)."""

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi import Request, Response

from chassis.runtime import Runtime
from order_service.domain.model import Line, Order, UnknownSkus
from order_service.main import create_app
from order_service.service_layer import handlers, intake
from order_service.service_layer.handlers import Placement
from order_service.service_layer.intake import Intake, ShuttingDown
from order_service.settings import Settings

RUNTIME = cast(Runtime, SimpleNamespace(sessions=None, outbox=None))


class FakePlacing:
    """Places each batch when `release` is set; refuses customer "nobody"; records the batches."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.failure = failure

    async def __call__(
        self, _sessions: Any, _outbox: Any, placements: Sequence[Placement]
    ) -> list[Order | Exception]:
        self.batches.append([p.customer_id for p in placements])
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
        return [
            UnknownSkus(["x"])
            if p.customer_id == "nobody"
            else Order.place(uuid.uuid4(), p.customer_id, [Line("x", 1, 1)], datetime.now(UTC))
            for p in placements
        ]


async def started(monkeypatch: pytest.MonkeyPatch, placing: FakePlacing) -> tuple[Intake, Any]:
    monkeypatch.setattr(handlers, "place_orders", placing)
    queue = Intake()
    return queue, asyncio.create_task(queue.run(RUNTIME))


async def test_requests_that_arrive_during_a_transaction_share_the_next_one(monkeypatch):
    placing = FakePlacing()
    queue, running = await started(monkeypatch, placing)
    first = asyncio.create_task(queue.place(Placement("a", [("x", 1)])))
    await asyncio.sleep(0)  # the first is placed alone at once
    rest = [
        asyncio.create_task(queue.place(Placement(name, [("x", 1)])))
        for name in ("b", "nobody", "c")
    ]
    await asyncio.sleep(0)
    placing.release.set()
    assert (await first).customer_id == "a"
    b, refused, c = await asyncio.gather(*rest, return_exceptions=True)
    assert placing.batches == [["a"], ["b", "nobody", "c"]]
    assert isinstance(b, Order) and b.customer_id == "b"
    assert isinstance(refused, UnknownSkus)  # only its own request fails
    assert isinstance(c, Order) and c.customer_id == "c"
    running.cancel()


async def test_a_batch_holds_at_most_max_batch_orders(monkeypatch):
    placing = FakePlacing()
    queue, running = await started(monkeypatch, placing)
    placing.release.set()
    names = [f"c{n}" for n in range(intake.MAX_BATCH + 5)]
    await asyncio.gather(*(queue.place(Placement(name, [("x", 1)])) for name in names))
    assert [len(batch) for batch in placing.batches] == [intake.MAX_BATCH, 5]
    running.cancel()


async def test_a_failing_transaction_fails_every_request_of_its_batch(monkeypatch):
    placing = FakePlacing(failure=ConnectionRefusedError("database down"))
    queue, running = await started(monkeypatch, placing)
    placing.release.set()
    results = await asyncio.gather(
        *(queue.place(Placement(name, [("x", 1)])) for name in "abc"), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionRefusedError) for r in results)
    # The intake goes on placing after a failure.
    placing.failure = None
    assert (await queue.place(Placement("d", [("x", 1)]))).customer_id == "d"
    running.cancel()


async def test_requests_left_at_shutdown_are_answered_shutting_down(monkeypatch):
    placing = FakePlacing()
    queue, running = await started(monkeypatch, placing)
    in_hand = asyncio.create_task(queue.place(Placement("a", [("x", 1)])))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(queue.place(Placement("b", [("x", 1)])))
    await asyncio.sleep(0)
    running.cancel()
    for request in (in_hand, waiting):
        with pytest.raises(ShuttingDown):
            await request


async def test_shutting_down_is_answered_503_with_retry_after():
    app = create_app(Settings(database_url="postgresql+asyncpg://u:p@127.0.0.1:1/db"))
    handler = app.exception_handlers[ShuttingDown]
    response = await cast(Awaitable[Response], handler(cast(Request, None), ShuttingDown()))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert b"Idempotency-Key" in response.body
