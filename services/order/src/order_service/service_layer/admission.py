"""Admission control: no new order while too many sagas are still pending.

The in-flight limit (`chassis.overload`) bounds the requests a process serves at once,
but not the work they leave behind: each accepted order is a saga the consumers must
still carry through. Accepting orders faster than payment and inventory can answer
them only grows a queue that the saga timeout then empties by cancelling everything in
it: throughput collapses to nothing confirmed. So the order service keeps the queue
bounded: once `limit` orders are PENDING, placing one is refused with 503 and
`Retry-After` until the sagas in flight catch up. The count is read every
`INTERVAL` seconds from the partial index on pending orders, never per request.
"""

import asyncio
import logging

from prometheus_client import Gauge

from chassis.overload import Overloaded
from chassis.runtime import Runtime
from order_service.adapters import repository

log = logging.getLogger(__name__)

INTERVAL = 0.25
PENDING = Gauge("sagas_pending", "Orders PENDING as of the last count (the saga backlog)")


class Admission:
    """Whether a new order may be placed now, from the last count of pending orders."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = 0

    def check(self) -> None:
        """Raise `Overloaded` while the backlog of pending sagas is full."""
        if self.pending >= self.limit:
            raise Overloaded(f"{self.pending} orders are still pending (at most {self.limit})")

    async def watch(self, runtime: Runtime) -> None:
        """Count the pending orders every `INTERVAL` seconds, until cancelled."""
        while True:
            try:
                async with runtime.sessions() as session:
                    self.pending = await repository.count_pending(session)
                PENDING.set(self.pending)
            except Exception:
                log.warning("counting pending orders failed; keeping the last count", exc_info=True)
            await asyncio.sleep(INTERVAL)
