"""Bounded concurrency: a process admits a fixed number of requests and refuses the rest at once."""

import logging
import time
from collections.abc import Collection

from prometheus_client import Counter, Gauge
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

REFUSED = Counter(
    "http_requests_refused_total", "Requests answered 503 because the in-flight limit was reached"
)
IN_FLIGHT = Gauge("http_requests_in_flight", "Requests being served now (exempt paths excluded)")

_LOG_EVERY_SECONDS = 10.0
"""Under overload every request would log: one line per interval says how many were refused."""


RETRY_AFTER_SECONDS = 1
"""What a 503 tells clients to wait: for an outage the pool reconnects on the next
request anyway, and an overload clears as soon as a few requests finish."""


def retry_later(detail: str) -> JSONResponse:
    """The chassis's one refusal of work it cannot take now: 503, JSON `detail`, `Retry-After`."""
    return JSONResponse(
        {"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


class Overloaded(Exception):
    """Raised by a route that refuses work now: answered 503 with `Retry-After`."""


class InFlightLimit:
    """Pure ASGI middleware: at most `limit` HTTP requests in flight, the rest get a 503 now.

    A refused request costs no more than parsing it: it never reaches a route, so it
    holds no database connection and waits in no queue. Waiting would only move the
    queue from the client into this process's memory, and every request in it would
    grow older than the client's patience; an immediate 503 with `Retry-After` lets the
    client decide (and a client that retries with the same `Idempotency-Key` loses
    nothing). Paths in `exempt` (health probes, metrics) are never refused, so an
    orchestrator does not restart a process that is merely busy.

    The count needs no lock: one event loop runs this, and nothing awaits between
    the check and the increment.
    """

    def __init__(self, app: ASGIApp, *, limit: int, exempt: Collection[str] = ()) -> None:
        if limit < 1:
            raise ValueError(f"the in-flight limit must be at least 1, not {limit}")
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self._exempt = frozenset(exempt)
        self._refused_since_log = 0
        self._logged_at = float("-inf")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._exempt:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self._refuse()
            response = retry_later("service overloaded: too many requests in flight; retry later")
            await response(scope, receive, send)
            return
        self.in_flight += 1
        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            IN_FLIGHT.dec()

    def _refuse(self) -> None:
        REFUSED.inc()
        self._refused_since_log += 1
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY_SECONDS:
            log.warning(
                "overloaded: %d request(s) refused with 503 (limit %d in flight)",
                self._refused_since_log,
                self.limit,
            )
            self._refused_since_log, self._logged_at = 0, now
