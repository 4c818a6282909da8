"""The console's eyes: a Kafka consumer on the saga and dead-letter topics, and a health poller.

Both only look. The consumer has no consumer group (`group_id=None`): it reads every
partition of every topic from the earliest offset and commits nothing, so it never
shares partitions with the services, never shows up as a lagging group, and a console
started late still sees the orders the broker holds. The poller reads each service's
`/health/ready` and `/metrics` once a second, over HTTP like any monitoring system.
Neither makes a service call another.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from prometheus_client.parser import text_string_to_metric_families

from saga_console.board import DLQ_TOPICS, SAGA_TOPICS, Board, OrderView

logger = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
"""Wait between attempts to reach the broker while it is down."""


class EventObserver:
    """Reads the saga and dead-letter topics into `board`, calling `changed` for each order it updates."""

    def __init__(
        self, bootstrap: str, board: Board, changed: Callable[[OrderView | None], None]
    ) -> None:
        self.bootstrap = bootstrap
        self.board = board
        self.changed = changed
        self._renew = asyncio.Event()

    def renew(self) -> None:
        """Read with a new consumer from the topics' start: the broker came back, maybe empty.

        A consumer that outlived a restart of the local broker was seen to read nothing
        more, now and then: most likely it kept positions past the new topics' ends,
        having not looked while the topics were missing. A new one starts from the
        earliest offset, whatever the old one's state; the board skips what it has seen.
        """
        self._renew.set()

    async def run(self) -> None:
        """Consume until cancelled, starting again whenever the broker goes away."""
        while True:
            consumer = AIOKafkaConsumer(
                *SAGA_TOPICS,
                *DLQ_TOPICS,
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                # Earliest, also when the local broker restarts empty and the positions
                # held are past the new topics' ends: then the console reads them anew.
                auto_offset_reset="earliest",
                metadata_max_age_ms=5_000,
            )
            try:
                await consumer.start()
                self.board.read_again()  # this consumer reads from the start
                self.changed(None)
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A broker that is down or restarting: report it once, try again shortly.
                logger.info("event observer: %r; retrying in %.0f s", exc, RETRY_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(RETRY_SECONDS)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        self._renew.clear()
        while not self._renew.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for partition, records in batches.items():
                for record in records:
                    order = self.board.apply(partition.topic, record.value, record.headers)
                    if order is not None or partition.topic in DLQ_TOPICS:
                        self.changed(order)


@dataclass
class ServiceHealth:
    """What a service's probes said last time."""

    state: str = "unknown"
    """`ready`, `not ready` (it answers, a dependency does not) or `down` (no answer)."""
    checks: dict[str, bool] = field(default_factory=dict)
    outbox_backlog: float | None = None
    """`outbox_backlog` from its /metrics: events written but not yet sent."""

    def as_json(self) -> dict[str, Any]:
        """The health for the page."""
        return {"state": self.state, "checks": self.checks, "outbox_backlog": self.outbox_backlog}


class HealthPoller:
    """Polls each service's readiness and outbox backlog, and whether the broker accepts connections."""

    def __init__(
        self,
        urls: Mapping[str, str],
        bootstrap: str,
        changed: Callable[[], None],
        broker_returned: Callable[[], None] = lambda: None,
        interval: float = 1.0,
    ) -> None:
        self.urls = dict(urls)
        self.bootstrap = bootstrap
        self.changed = changed
        self.broker_returned = broker_returned
        """Called when the broker accepts connections again after it did not."""
        self.interval = interval
        self.services: dict[str, ServiceHealth] = {svc: ServiceHealth() for svc in urls}
        self.broker_up: bool | None = None

    def as_json(self) -> dict[str, Any]:
        """Every service's health and the broker's, for the page."""
        return {
            "services": {svc: h.as_json() for svc, h in self.services.items()},
            "broker": {"state": {None: "unknown", True: "up", False: "down"}[self.broker_up]},
        }

    async def run(self) -> None:
        """Poll until cancelled; call `changed` when anything differs from the last round."""
        async with httpx.AsyncClient(timeout=2.0) as http:
            while True:
                before, was_up = self.as_json(), self.broker_up
                probes = asyncio.gather(*(self._probe(http, url) for url in self.urls.values()))
                healths, self.broker_up = await asyncio.gather(probes, self._broker())
                self.services = dict(zip(self.urls, healths, strict=True))
                if was_up is False and self.broker_up:
                    self.broker_returned()
                if self.as_json() != before:
                    self.changed()
                await asyncio.sleep(self.interval)

    async def _probe(self, http: httpx.AsyncClient, url: str) -> ServiceHealth:
        try:
            ready = await http.get(f"{url}/health/ready")
            metrics = await http.get(f"{url}/metrics")
        except httpx.HTTPError:
            return ServiceHealth(state="down")
        try:
            body = ready.json()
        except ValueError:
            body = {}
        return ServiceHealth(
            state="ready" if ready.status_code == 200 else "not ready",
            checks={k: bool(v) for k, v in body.get("checks", {}).items()},
            outbox_backlog=gauge(metrics.text, "outbox_backlog") if metrics.is_success else None,
        )

    async def _broker(self) -> bool:
        host, _, port = self.bootstrap.split(",")[0].rpartition(":")
        try:
            async with asyncio.timeout(1.0):
                _, writer = await asyncio.open_connection(host, int(port))
        except (OSError, TimeoutError, ValueError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True


def gauge(metrics_text: str, name: str) -> float | None:
    """The sum of a metric's samples in Prometheus text format (None if it is not there)."""
    for family in text_string_to_metric_families(metrics_text):
        if family.name == name:
            return sum(sample.value for sample in family.samples)
    return None
