"""Overload and soak: a burst far above capacity, and a long steady load, with memory watched.

`ResourceWatch` samples each service process's resident memory (VmRSS from
/proc/<pid>/status) and its `/metrics` (`outbox_backlog`, `http_requests_refused_total`).
`Overload` is a chaos scenario (see `harness.Fault`); `Soak` is the fault-free long run
of tests/failure/test_soak.py (`make soak`).
"""

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from chassis.settings import ServiceSettings
from devstack.client import TERMINAL, SagaClient
from devstack.procfs import memory_bytes
from devstack.stack import SERVICES

from .harness import HAPPY, ChaosRun, Fault, outcome, read_histories, retry_after, with_retry

MB = 1024 * 1024

LIMIT: int = ServiceSettings.model_fields["max_concurrent_requests"].default
"""Each service's in-flight limit in these runs (the default: the chaos stacks set none)."""


async def scrape(client: SagaClient, svc: str) -> dict[str, float]:
    """The unlabelled samples of a service's /metrics, by sample name."""
    response = await client.request(svc, "GET", "/metrics")
    response.raise_for_status()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if not sample.labels
    }


@dataclass(frozen=True)
class Usage:
    """One service at one moment."""

    rss: int
    """Resident memory, bytes."""
    backlog: int
    """`outbox_backlog`: outbox rows the relay left waiting in its last round."""
    refused: int
    """`http_requests_refused_total`: requests refused by the in-flight limit so far."""


def mb(nbytes: int) -> float:
    return round(nbytes / MB, 1)


class ResourceWatch:
    """Samples every service of a run; keeps the first and last sample, peak RSS, max backlog.

    A sample that fails (a process gone, /metrics not answering) is a problem of the run:
    /metrics bypasses the in-flight limit, so it must answer under any load.
    """

    def __init__(self, run: ChaosRun) -> None:
        self.run = run
        self.pids = {svc: run.stack.pid(svc) for svc in SERVICES}
        self.first: dict[str, Usage] = {}
        self.last: dict[str, Usage] = {}
        self.peak_rss = dict.fromkeys(SERVICES, 0)
        self.max_backlog = dict.fromkeys(SERVICES, 0)
        self.problems: list[str] = []

    async def sample(self) -> dict[str, Usage]:
        """Read every service now, and update first, last and the peaks."""
        usage: dict[str, Usage] = {}
        for svc, pid in self.pids.items():
            metrics = await scrape(self.run.client, svc)
            usage[svc] = Usage(
                rss=memory_bytes(pid),
                backlog=int(metrics["outbox_backlog"]),
                refused=int(metrics["http_requests_refused_total"]),
            )
            self.peak_rss[svc] = max(self.peak_rss[svc], usage[svc].rss)
            self.max_backlog[svc] = max(self.max_backlog[svc], usage[svc].backlog)
        self.first = self.first or usage
        self.last = usage
        return usage

    @contextlib.asynccontextmanager
    async def sampling(self, interval: float, progress_every: float = 0.0) -> AsyncIterator[None]:
        """Sample every `interval` s for the duration of the block; a line every `progress_every` s."""
        await self.sample()
        task = asyncio.create_task(self._every(interval, progress_every))
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _every(self, interval: float, progress_every: float) -> None:
        loop = asyncio.get_running_loop()
        said = loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                usage = await self.sample()
            except (OSError, RuntimeError, httpx.HTTPError, KeyError) as exc:
                self.problems.append(f"t={self.run.driver.now():.1f}s: sample failed: {exc!r}")
                continue
            if progress_every and loop.time() - said >= progress_every:
                said = loop.time()
                self.run.say(self.line(usage))

    def line(self, usage: dict[str, Usage]) -> str:
        """A progress line: orders accepted, then RSS and outbox backlog per service."""
        rss = ", ".join(f"{svc} {mb(u.rss):.0f}" for svc, u in usage.items())
        backlog = ", ".join(f"{svc} {u.backlog}" for svc, u in usage.items())
        return f"{len(self.run.driver.placed)} accepted; RSS MB {rss}; outbox {backlog}"

    def restarted(self) -> list[str]:
        """The services whose process is gone or is not the one watched from the start."""
        gone = []
        for svc, pid in self.pids.items():
            try:
                if self.run.stack.pid(svc) != pid:
                    gone.append(svc)
            except RuntimeError:  # not running
                gone.append(svc)
        return gone


class Overload(Fault):
    """A burst of orders far above the order service's in-flight limit, during the load."""

    key = "overload"
    name = "Overload"

    def __init__(self, size: int = 800, at: float = 0.3) -> None:
        self.size = size
        self.at = at
        self.description = (
            f"At {at:.0%} of the load, {size} POST /v1/orders at once, each on its own "
            f"connection: {size // LIMIT} times the order service's in-flight limit "
            f"({LIMIT}, `max_concurrent_requests`). Every request must be answered at once, "
            "202 or 503 with Retry-After (no 500, no reset connection); the service must stay "
            "alive and ready; refused clients retry no sooner than Retry-After (plus a random "
            "extra wait) with the same Idempotency-Key until accepted, and every accepted "
            "order must complete. Memory (RSS) of every service is sampled every 0.5 s."
        )
        self.watch: ResourceWatch | None = None
        self.first: Counter[str] = Counter()
        """The first answer to each burst request: status, or the transport error."""
        self.retried: Counter[str] = Counter()
        self.readiness: Counter[int] = Counter()
        self.accepted: list[str] = []
        self.lost = 0

    @contextlib.asynccontextmanager
    async def around(self, run: ChaosRun) -> AsyncIterator[None]:
        self.watch = ResourceWatch(run)
        async with self.watch.sampling(interval=0.5):
            yield

    async def during(self, run: ChaosRun) -> None:
        await run.at(self.at)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        # No keep-alive: each burst client has a connection of its own, as separate
        # clients would, and none reuses a connection the server closed meanwhile.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        run.say(f"burst: {self.size} orders at once")
        started = loop.time()
        async with httpx.AsyncClient(
            base_url=run.stack.url("order"), limits=limits, timeout=30
        ) as http:
            probing = asyncio.create_task(self._probe_readiness(run))
            try:
                order_ids = await asyncio.gather(
                    *(self._order(run, http, i, deadline) for i in range(self.size))
                )
            finally:
                probing.cancel()
                await asyncio.gather(probing, return_exceptions=True)
        self.accepted = [order_id for order_id in order_ids if order_id is not None]
        self.lost = self.size - len(self.accepted)
        run.say(
            f"burst: first answers {_counts(self.first)}; all {len(self.accepted)} accepted "
            f"{loop.time() - started:.1f} s after it began"
        )

    async def _order(
        self, run: ChaosRun, http: httpx.AsyncClient, i: int, deadline: float
    ) -> str | None:
        customer, lines = run.driver.shop.order(HAPPY, run.rng)
        body = {
            "customer_id": customer,
            "items": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
        }
        headers = {"Idempotency-Key": f"burst-{i}-{uuid.uuid4().hex[:8]}"}
        answered = False

        async def post() -> httpx.Response:
            nonlocal answered
            first, answered = not answered, True
            try:
                response = await http.post("/v1/orders", json=body, headers=headers)
            except httpx.TransportError as exc:
                if first:
                    self.first[type(exc).__name__] += 1
                raise
            if first:
                refused_well = response.status_code != 503 or retry_after(response) is not None
                self.first[
                    str(response.status_code) if refused_well else "503, no Retry-After"
                ] += 1
            return response

        response = await with_retry(post, deadline, self.retried)
        if response is None or response.status_code != 202:
            return None
        order_id: str = response.json()["order_id"]
        return order_id

    async def _probe_readiness(self, run: ChaosRun) -> None:
        while True:
            try:
                response = await run.client.request("order", "GET", "/health/ready")
                self.readiness[response.status_code] += 1
            except httpx.HTTPError:
                self.readiness[0] += 1  # no answer at all
            await asyncio.sleep(0.2)

    async def after(self, run: ChaosRun) -> list[str]:
        assert self.watch is not None
        watch = self.watch
        end = await watch.sample()
        orders = await read_histories(run.client, self.accepted)
        unfinished = [o["order_id"] for o in orders.values() if o["status"] not in TERMINAL]
        run.notes["burst: requests"] = self.size
        run.notes["burst: first answers"] = _counts(self.first)
        run.notes["burst: retried answers"] = _counts(self.retried)
        run.notes["burst: orders accepted / completed"] = (
            f"{len(self.accepted)} / {len(self.accepted) - len(unfinished)}"
        )
        run.notes["burst: outcomes"] = dict(
            sorted(Counter(outcome(o) for o in orders.values()).items())
        )
        run.notes["order readiness during the burst"] = _counts(self.readiness)
        run.services = {
            svc: {
                "RSS before the load (MB)": mb(watch.first[svc].rss),
                "RSS peak (MB)": mb(watch.peak_rss[svc]),
                "RSS at the end (MB)": mb(end[svc].rss),
                "refused (503)": end[svc].refused,
                "outbox backlog, max": watch.max_backlog[svc],
            }
            for svc in SERVICES
        }
        return (
            self._problems(unfinished)
            + watch.problems
            + [f"{svc} was restarted (it crashed?)" for svc in watch.restarted()]
        )

    def _problems(self, unfinished: list[str]) -> list[str]:
        problems = [
            f"burst: {n} first answers were {answer}, not 202 or 503 with Retry-After"
            for answer, n in self.first.items()
            if answer not in ("202", "503")
        ]
        if not self.first["503"]:
            problems.append(f"burst: nothing refused: {self.size} did not exceed the limit")
        if self.lost:
            problems.append(f"burst: {self.lost} orders never accepted")
        problems += [f"burst order {order_id} never completed" for order_id in unfinished[:10]]
        if set(self.readiness) != {200}:
            problems.append(f"order readiness during the burst: {_counts(self.readiness)}")
        return problems


def _counts(counter: Counter[Any]) -> dict[str, int]:
    return {str(key): n for key, n in sorted(counter.items(), key=lambda kv: str(kv[0]))}


class Soak(Fault):
    """No fault: a long steady load, with memory and the outbox backlog watched."""

    key = "soak"
    name = "Soak"

    GROWTH_RATIO = 1.2
    GROWTH_SLACK = 10 * MB
    """Memory counts as flat if the RSS at the end of the load is at most 20% + 10 MB above
    the RSS after warm-up: allocator arenas and caches settle in steps of a few MB, and a
    leak of one object per order would grow far more over thousands of orders."""

    def __init__(self, seconds: float, rate: float, warmup: float) -> None:
        self.seconds = seconds
        self.warmup = warmup
        self.description = (
            f"No fault: {rate:g} orders/s of the usual mix for {seconds:.0f} s. Every "
            "service's resident memory (RSS) and `outbox_backlog` are sampled every 2 s. "
            f"Memory must be flat: RSS at the end of the load at most "
            f"{self.GROWTH_RATIO - 1:.0%} + {self.GROWTH_SLACK // MB} MB above the RSS after "
            f"{warmup:.0f} s of warm-up; the outboxes must drain to 0."
        )
        self.watch: ResourceWatch | None = None
        self.warm: dict[str, Usage] = {}
        self.end: dict[str, Usage] = {}

    @contextlib.asynccontextmanager
    async def around(self, run: ChaosRun) -> AsyncIterator[None]:
        self.watch = ResourceWatch(run)
        async with self.watch.sampling(interval=2.0, progress_every=max(10.0, self.seconds / 20)):
            yield

    async def during(self, run: ChaosRun) -> None:
        assert self.watch is not None
        await run.at(self.warmup / self.seconds)
        self.warm = await self.watch.sample()
        run.say(f"warm: {self.watch.line(self.warm)}")
        await run.at(1.0)
        self.end = await self.watch.sample()
        run.say(f"end of load: {self.watch.line(self.end)}")

    async def after(self, run: ChaosRun) -> list[str]:
        assert self.watch is not None
        watch = self.watch
        final = await watch.sample()
        run.services = {
            svc: {
                "RSS after warm-up (MB)": mb(self.warm[svc].rss),
                "RSS at the end of the load (MB)": mb(self.end[svc].rss),
                "growth": f"{(self.end[svc].rss / self.warm[svc].rss - 1):+.1%}",
                "RSS peak (MB)": mb(watch.peak_rss[svc]),
                "outbox backlog, max": watch.max_backlog[svc],
                "outbox backlog, at the end": final[svc].backlog,
            }
            for svc in SERVICES
        }
        problems = [
            f"{svc}: RSS grew from {mb(self.warm[svc].rss)} MB to {mb(self.end[svc].rss)} MB"
            for svc in SERVICES
            if self.end[svc].rss > self.warm[svc].rss * self.GROWTH_RATIO + self.GROWTH_SLACK
        ]
        problems += [
            f"{svc}: {final[svc].backlog} outbox rows still waiting after settling"
            for svc in SERVICES
            if final[svc].backlog
        ]
        return problems + watch.problems + [f"{svc} was restarted" for svc in watch.restarted()]
