"""The console's web app: one page, a stream of server-sent events, and the control endpoints.

`GET /` is the page, `GET /api/events` the live stream (a `snapshot` event on connect,
then `order`, `health`, `dead_letters` and `control` events as things happen),
`GET /api/state` the snapshot alone, `GET /api/orders/{id}` one order,
`GET /api/controls` the controls and
`POST /api/controls/{name}` runs one. The page is plain HTML and a small script with
`EventSource`: no framework, no build step, nothing fetched from elsewhere.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles

from saga_console.board import Board, OrderView
from saga_console.controls import ControlResult, Controls
from saga_console.observer import EventObserver, HealthPoller

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
QUEUE_SIZE = 1_000
"""Events buffered per open page; a page that falls this far behind is sent a fresh snapshot."""
LOG_SIZE = 20
"""Control runs the page lists."""


@dataclass(frozen=True)
class ConsoleConfig:
    """Where the console looks: the services' base URLs and the broker."""

    service_urls: Mapping[str, str]
    bootstrap: str


class Hub:
    """Fans events out to every open page, each through a bounded queue of its own."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[ServerSentEvent | None]] = set()

    def subscribe(self) -> asyncio.Queue[ServerSentEvent | None]:
        """A queue that receives every event from now on (None: the stream ends)."""
        queue: asyncio.Queue[ServerSentEvent | None] = asyncio.Queue(QUEUE_SIZE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[ServerSentEvent | None]) -> None:
        """Stop sending to `queue`."""
        self._queues.discard(queue)

    def publish(self, event: str, data: Any) -> None:
        """Send one event to every page; a page too far behind is disconnected instead."""
        for queue in list(self._queues):
            try:
                queue.put_nowait(ServerSentEvent(event=event, data=data))
            except asyncio.QueueFull:
                # EventSource reconnects by itself and then gets a full snapshot, which
                # is better than a page that silently misses steps.
                self._queues.discard(queue)
                self._end(queue)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        for queue in list(self._queues):
            self._end(queue)
        self._queues.clear()

    @staticmethod
    def _end(queue: asyncio.Queue[ServerSentEvent | None]) -> None:
        with contextlib.suppress(asyncio.QueueEmpty):
            while queue.full():
                queue.get_nowait()
        queue.put_nowait(None)


def create_app(config: ConsoleConfig, controls: Controls | None = None) -> FastAPI:
    """The console for the services at `config.service_urls`, with `controls` if given."""
    board = Board()
    hub = Hub()
    log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)

    def order_changed(order: OrderView | None) -> None:
        if order is None:
            hub.publish("dead_letters", board.dead_letters_json())
        else:
            hub.publish("order", order.as_json())

    observer = EventObserver(config.bootstrap, board, order_changed)
    poller = HealthPoller(
        config.service_urls,
        config.bootstrap,
        lambda: hub.publish("health", poller.as_json()),
        broker_returned=observer.renew,
    )

    def snapshot() -> dict[str, Any]:
        return {
            "orders": [order.as_json() for order in board.recent()],
            "health": poller.as_json(),
            "dead_letters": board.dead_letters_json(),
            "controls": [asdict(c) for c in controls.catalog] if controls else [],
            "log": list(log),
        }

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(observer.run()), asyncio.create_task(poller.run())]
        if controls is not None:
            tasks.append(asyncio.create_task(_start_controls(controls)))
        try:
            yield
        finally:
            hub.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if controls is not None:
                await controls.aclose()

    app = FastAPI(title="Saga console", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/state")
    async def state() -> dict[str, Any]:
        """Everything the page shows, as of now."""
        return snapshot()

    @app.get("/api/orders/{order_id}")
    async def order(order_id: str) -> dict[str, Any]:
        """One order as the console saw it (it keeps the most recent few hundred)."""
        seen = board.orders.get(order_id)
        if seen is None:
            raise HTTPException(
                status_code=404, detail=f"the console has not seen order {order_id}"
            )
        return seen.as_json()

    @app.get("/api/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterable[ServerSentEvent]:
        """The live stream: a snapshot, then each change as it happens."""
        queue = hub.subscribe()
        try:
            # `retry`: how soon the browser reconnects if the stream breaks.
            yield ServerSentEvent(event="snapshot", data=snapshot(), retry=1000)
            while (event := await queue.get()) is not None:
                yield event
        finally:
            hub.unsubscribe(queue)

    @app.get("/api/controls")
    async def list_controls() -> list[dict[str, str]]:
        """The controls this console offers (none when it only watches)."""
        return [asdict(c) for c in controls.catalog] if controls else []

    @app.post("/api/controls/{name}")
    async def run_control(name: str, request: Request) -> JSONResponse:
        """Run one control; 200 when it did what it says, 409 when it could not."""
        _refuse_other_origins(request)
        names = [c.name for c in controls.catalog] if controls else []
        if controls is None or name not in names:
            return JSONResponse(
                {"detail": f"unknown control {name!r}", "names": names}, status_code=404
            )
        try:
            result = await controls.run(name)
        except Exception as exc:
            # A control that fails (a service that does not answer, say) is news for the
            # room, not a crash of the console.
            logger.exception("control %s failed", name)
            result = ControlResult(ok=False, message=f"{name} failed: {exc}")
        entry = {
            "name": name,
            "ok": result.ok,
            "message": result.message,
            "order_ids": list(result.order_ids),
            "at": datetime.now(UTC).isoformat(),
        }
        log.appendleft(entry)
        hub.publish("control", entry)
        return JSONResponse(entry, status_code=200 if result.ok else 409)

    return app


async def _start_controls(controls: Controls) -> None:
    try:
        await controls.start()
    except Exception:
        # Not fatal: the controls try again when first used, and say why if they cannot.
        logger.exception("preparing the workshop controls failed")


def _refuse_other_origins(request: Request) -> None:
    """Refuse a POST that a page from another site makes the browser send.

    The console listens on 127.0.0.1 only, but any web page the trainer opens could
    still post to it; browsers say where such a request comes from in `Origin`. The
    command line (`make scenario`) sends no `Origin` at all.
    """
    origin = request.headers.get("origin")
    if origin is not None and origin != f"http://{request.headers.get('host')}":
        raise HTTPException(status_code=403, detail=f"controls refuse requests from {origin}")
