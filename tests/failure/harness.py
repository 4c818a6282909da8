"""The fault-injection harness: a steady stream of mixed orders, one fault, then settle.

A scenario is a `Fault` run by `run_scenario` on a fresh stack:

1. seed a small shop (`Shop`): plenty of widgets and gadgets, a rare item nobody can
   get enough of, rich customers and one who cannot pay;
2. place `Load.orders` orders evenly over `Load.seconds` seconds, at most
   `Load.concurrency` in flight, each with an `Idempotency-Key` and retried on
   transport errors, 5xx and 429 (no sooner than a `Retry-After` asks), so an order
   service that is down or overloaded loses nothing. The mix
   (`MIX`) is happy path, out of stock, payment declined, cancelled right after
   placing and cancelled after confirmation;
3. meanwhile the fault does its damage (`Fault.during`), optionally with machinery
   running around the whole run (`Fault.around`, e.g. the duplicating injector);
4. once the load is over, wait until every order's history is complete and
   `devstack.invariants.settle` finds no violation: that is the time to settle;
5. run the fault's own checks (`Fault.after`) and return a `Result`.
"""

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from devstack.client import TERMINAL, Json, SagaClient
from devstack.invariants import Report, settle
from devstack.scenarios import history_complete
from devstack.stack import SERVICES, Stack

SAGA_TIMEOUT_SECONDS = 10
"""The saga timeout of every chaos stack: short, so that timeouts happen within a run."""

RETRYABLE = frozenset({429, 500, 502, 503, 504})
"""Answers a careful client retries (with the same Idempotency-Key)."""

RETRY_DELAY = 0.25
"""Seconds between retries after a transport error or a 5xx that names no Retry-After."""

MAX_EXTRA_WAIT = 4.0
"""The cap, in seconds, of the random extra wait after an answer with Retry-After."""

_CONCURRENT_READS = 16


# -- the order mix ----------------------------------------------------------------------

HAPPY = "happy"
OUT_OF_STOCK = "out_of_stock"
DECLINED = "declined"
CANCEL_PENDING = "cancel_pending"
CANCEL_CONFIRMED = "cancel_confirmed"

MIX: dict[str, int] = {
    HAPPY: 50,
    OUT_OF_STOCK: 15,
    DECLINED: 15,
    CANCEL_PENDING: 10,
    CANCEL_CONFIRMED: 10,
}
"""Kinds of order and their weights (percent)."""

NEVER_CONFIRMED = frozenset({OUT_OF_STOCK, DECLINED})
"""Kinds that must end CANCELLED whatever the fault: confirming one would be a bug."""


@dataclass(frozen=True)
class Shop:
    """What every scenario sells, and to whom."""

    widget: str = "widget"
    gadget: str = "gadget"
    rare: str = "rare"
    rare_stock: int = 3
    rich: tuple[str, ...] = tuple(f"customer-{i:02}" for i in range(10))
    poor: str = "poor-customer"

    async def seed(self, client: SagaClient) -> None:
        await client.put_product(self.widget, "Widget", 1_250, 1_000_000)
        await client.put_product(self.gadget, "Gadget", 4_999, 1_000_000)
        await client.put_product(self.rare, "Rare", 9_900, self.rare_stock)
        for customer in self.rich:
            await client.put_account(customer, 100_000_000)
        await client.put_account(self.poor, 500)

    def order(self, kind: str, rng: random.Random) -> tuple[str, list[tuple[str, int]]]:
        """A customer and lines for an order of `kind`."""
        customer = rng.choice(self.rich)
        lines = [(self.widget, rng.randint(1, 3))]
        if rng.random() < 0.5:
            lines.append((self.gadget, rng.randint(1, 2)))
        if kind == OUT_OF_STOCK:
            # Nobody ever gets the rare item, so its stock stays at rare_stock.
            lines.append((self.rare, self.rare_stock + rng.randint(1, 5)))
        elif kind == DECLINED:
            customer = self.poor  # 500 cents: cannot afford a single widget
        return customer, lines


@dataclass(frozen=True)
class Load:
    orders: int = 300
    seconds: float = 40.0
    concurrency: int = 16


# -- HTTP like a careful client ------------------------------------------------------------


async def with_retry(
    call: Callable[[], Awaitable[httpx.Response]],
    deadline: float,
    retried: Counter[str] | None = None,
) -> httpx.Response | None:
    """`call()` until it answers something other than a 5xx/429; None at `deadline`.

    An answer with `Retry-After` (an overloaded or unavailable service) is retried no
    sooner than it says, plus a random extra wait that doubles with each such answer
    in a row (up to `MAX_EXTRA_WAIT`), so that clients refused together do not all
    return together. Each retried answer is counted in `retried` by status (or
    "transport error").
    """
    loop = asyncio.get_running_loop()
    waits = 0
    while True:
        delay = RETRY_DELAY
        try:
            response = await call()
        except httpx.TransportError:
            reason = "transport error"
        else:
            if response.status_code not in RETRYABLE:
                return response
            reason = str(response.status_code)
            asked = retry_after(response)
            if asked is not None:
                delay = asked + random.uniform(
                    0, min(MAX_EXTRA_WAIT, max(asked, RETRY_DELAY) * 2**waits)
                )
                waits += 1
        if retried is not None:
            retried[reason] += 1
        if loop.time() > deadline:
            return None
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))


def retry_after(response: httpx.Response) -> float | None:
    """The seconds a response's `Retry-After` asks to wait (delay-seconds or HTTP-date)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: the caller's own delay applies
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass
class Placed:
    order_id: str
    kind: str
    accepted_at: float
    """Seconds since the load started."""


@dataclass
class LoadDriver:
    """Places the orders of one run and remembers what happened to each request."""

    client: SagaClient
    shop: Shop
    load: Load
    rng: random.Random
    give_up_after: float = 120.0
    """Seconds past the end of the schedule after which a request is abandoned."""

    sent: int = 0
    placed: list[Placed] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lost: int = 0
    cancels: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)
    """Answers retried, by status: 503 from an overloaded service, transport errors, ..."""
    started: float = 0.0

    def now(self) -> float:
        """Seconds since the load started."""
        return asyncio.get_running_loop().time() - self.started

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.started = loop.time()
        deadline = self.started + self.load.seconds + self.give_up_after
        slots = asyncio.Semaphore(self.load.concurrency)
        interval = self.load.seconds / self.load.orders
        kinds, weights = list(MIX), list(MIX.values())
        tasks: list[asyncio.Task[None]] = []
        for i in range(self.load.orders):
            await asyncio.sleep(max(0.0, self.started + i * interval - loop.time()))
            kind = self.rng.choices(kinds, weights)[0]
            customer, lines = self.shop.order(kind, self.rng)
            await slots.acquire()
            self.sent += 1
            tasks.append(asyncio.create_task(self._one(i, kind, customer, lines, slots, deadline)))
        await asyncio.gather(*tasks)

    async def _one(
        self,
        i: int,
        kind: str,
        customer: str,
        lines: list[tuple[str, int]],
        slots: asyncio.Semaphore,
        deadline: float,
    ) -> None:
        key = f"chaos-{i}-{uuid.uuid4().hex[:8]}"
        try:
            response = await with_retry(
                lambda: self.client.place_order(customer, lines, idempotency_key=key),
                deadline,
                self.retried,
            )
            if response is None:
                self.lost += 1
                return
            if response.status_code != 202:
                self.refused.append(f"{response.status_code} {response.text[:200]}")
                return
            order_id: str = response.json()["order_id"]
            self.placed.append(Placed(order_id, kind, self.now()))
            if kind == CANCEL_PENDING:
                await self._cancel(order_id, deadline)
        finally:
            slots.release()
        if kind == CANCEL_CONFIRMED:
            order = await self._wait_terminal(order_id, deadline)
            if order is not None and order["status"] == "CONFIRMED":
                await self._cancel(order_id, deadline)

    async def _cancel(self, order_id: str, deadline: float) -> None:
        response = await with_retry(lambda: self.client.cancel(order_id), deadline, self.retried)
        # 409: already cancelled (by the saga, or by our own earlier try whose answer was lost).
        self.cancels[str(response.status_code) if response is not None else "gave up"] += 1

    async def _wait_terminal(self, order_id: str, deadline: float) -> Json | None:
        loop = asyncio.get_running_loop()
        path = f"/v1/orders/{order_id}"
        while loop.time() < deadline:
            response = await with_retry(
                lambda: self.client.request("order", "GET", path), deadline, self.retried
            )
            if response is not None and response.status_code == 200:
                order: Json = response.json()
                if order["status"] in TERMINAL:
                    return order
            await asyncio.sleep(0.2)
        return None


# -- a run and its result --------------------------------------------------------------------


@dataclass
class ChaosRun:
    """What a fault sees: the stack, a client, its own random generator, a log."""

    stack: Stack
    client: SagaClient
    rng: random.Random
    seed: int
    load: Load
    driver: LoadDriver
    log: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    """Numbers a fault wants in the results (e.g. duplicates injected)."""
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-service measurements a fault wants in the results (e.g. memory): service ->
    measure -> value, shown as a table with a row per service and a column per measure."""
    orders: dict[str, Json] = field(default_factory=dict)
    """Every accepted order with its history, once settled."""

    def say(self, line: str) -> None:
        stamp = f"t={self.driver.now():5.1f}s" if self.driver.started else "t=  -   "
        self.log.append(f"{stamp} {line}")
        print(f"[chaos] {stamp} {line}", flush=True)  # noqa: T201 - progress in -s runs

    async def at(self, fraction: float) -> None:
        """Sleep until `fraction` of the load's duration has passed."""
        await asyncio.sleep(max(0.0, fraction * self.load.seconds - self.driver.now()))

    async def kill(self, svc: str) -> None:
        await asyncio.to_thread(self.stack.kill, svc)
        self.say(f"SIGKILL {svc}")

    async def restart(self, svc: str) -> float:
        """Start `svc` and wait until it is ready; the seconds that took."""
        started = time.monotonic()
        await asyncio.to_thread(self.stack.start_service, svc)
        took = time.monotonic() - started
        self.say(f"{svc} restarted, ready in {took:.1f} s")
        return took


class Fault:
    """One kind of failure. Subclasses override what they need; the base does nothing.

    To add a scenario (a database outage, a broker restart, ...), subclass this and
    add an instance to `FAULTS` in test_chaos.py: it then gets its own test and its
    row in docs/reliability.md.
    """

    key = "none"
    """A short id for the test name."""
    name = "no fault"
    description = "The load alone, nothing broken."

    @contextlib.asynccontextmanager
    async def around(self, run: ChaosRun) -> AsyncIterator[None]:  # noqa: ARG002
        """Machinery that runs from before the load until after the system settled."""
        yield

    async def during(self, run: ChaosRun) -> None:
        """The damage, done while the load runs; returns before (or soon after) it ends."""

    async def after(self, run: ChaosRun) -> list[str]:  # noqa: ARG002
        """Checks specific to this fault, once the system settled: the problems found."""
        return []


@dataclass
class Result:
    """One row of docs/reliability.md."""

    scenario: str
    description: str
    seed: int
    finished_at: str
    orders_sent: int
    orders_accepted: int
    orders_refused: int
    orders_lost: int
    completed: int
    by_status: dict[str, int]
    by_kind: dict[str, dict[str, int]]
    violations: list[str]
    problems: list[str]
    settle_seconds: float | None
    load_seconds: float
    run_seconds: float
    fault_log: list[str]
    notes: dict[str, Any]
    services: dict[str, dict[str, Any]]
    machine: dict[str, Any]

    @property
    def passed(self) -> bool:
        return not self.violations and not self.problems and self.settle_seconds is not None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def outcome(order: Json) -> str:
    """`CONFIRMED`, or `CANCELLED/<reason>`."""
    if order["status"] == "CANCELLED":
        return f"CANCELLED/{order['reason']}"
    return str(order["status"])


async def read_histories(client: SagaClient, order_ids: list[str]) -> dict[str, Json]:
    limit = asyncio.Semaphore(_CONCURRENT_READS)

    async def read(order_id: str) -> Json:
        async with limit:
            return await client.order(order_id)

    orders = await asyncio.gather(*(read(i) for i in order_ids))
    return {o["order_id"]: o for o in orders}


def assert_passed(result: "Result") -> None:
    """What every scenario must end with: nothing broken, nothing lost, everything done.

    Each assertion says what it saw: this module is not rewritten by pytest.
    """
    assert result.violations == [], result.violations
    assert result.problems == [], result.problems
    assert result.settle_seconds is not None, "the system never settled"
    assert result.orders_lost == 0, f"{result.orders_lost} orders given up on after retrying"
    counts = (result.completed, result.orders_accepted, result.orders_sent)
    assert counts[0] == counts[1] == counts[2], f"completed, accepted, sent: {counts}"


async def wait_settled(
    run: ChaosRun, since: float, timeout: float
) -> tuple[Report, float | None, list[str]]:
    """Wait until every order's history is complete and the invariants hold.

    Returns the last invariant report, the seconds since `since` (loop time, the end
    of the load) until all held (None if they never did), and the orders whose history
    stayed incomplete. A complete history (terminal, and the decision answered by
    payment and inventory) means no saga step is still in flight, so the invariants
    are not merely holding for a moment between two steps.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = [p.order_id for p in run.driver.placed]
    while pending and loop.time() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            run.orders.update(await read_histories(run.client, pending))
            pending = [i for i in pending if not history_complete(run.orders[i])]
        if pending:
            await asyncio.sleep(0.5)
    report = await settle(run.client, timeout=max(1.0, deadline - loop.time()))
    took = loop.time() - since
    held = not report.violations and not pending
    return report, (took if held else None), pending


async def run_scenario(
    fault: Fault,
    stack: Stack,
    seed: int,
    machine: dict[str, Any],
    load: Load | None = None,
    settle_timeout: float = 120.0,
) -> Result:
    """Seed, load with `fault` injected, settle, check; the result row."""
    load = load or Load()
    began = time.monotonic()
    async with SagaClient({svc: stack.url(svc) for svc in SERVICES}) as client:
        shop = Shop()
        await shop.seed(client)
        driver = LoadDriver(client, shop, load, random.Random(seed))
        run = ChaosRun(stack, client, random.Random(seed + 1), seed, load, driver)
        run.say(f"{fault.name}: seed {seed}, {load.orders} orders over {load.seconds:.0f} s")
        async with fault.around(run):
            loading = asyncio.create_task(driver.run())
            damage = asyncio.create_task(fault.during(run))
            try:
                await loading
                load_seconds, load_end = driver.now(), asyncio.get_running_loop().time()
                run.say(f"load done: {driver.sent} sent, {len(driver.placed)} accepted")
                await damage
            finally:
                for task in (loading, damage):
                    task.cancel()
                await asyncio.gather(loading, damage, return_exceptions=True)
            report, settle_seconds, incomplete = await wait_settled(run, load_end, settle_timeout)
            run.say(
                "settled in "
                + (f"{settle_seconds:.1f} s" if settle_seconds is not None else "NEVER")
            )
            problems = [f"order {i}: history incomplete" for i in incomplete[:20]]
            problems += await fault.after(run)
    problems += _mix_problems(run)
    final = [run.orders[p.order_id] for p in driver.placed if p.order_id in run.orders]
    by_kind: dict[str, Counter[str]] = {}
    for p in driver.placed:
        if p.order_id in run.orders:
            by_kind.setdefault(p.kind, Counter())[outcome(run.orders[p.order_id])] += 1
    return Result(
        scenario=fault.name,
        description=fault.description,
        seed=seed,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        orders_sent=driver.sent,
        orders_accepted=len(driver.placed),
        orders_refused=len(driver.refused),
        orders_lost=driver.lost,
        completed=sum(o["status"] in TERMINAL for o in final),
        by_status=dict(sorted(Counter(outcome(o) for o in final).items())),
        by_kind={kind: dict(sorted(c.items())) for kind, c in sorted(by_kind.items())},
        violations=report.violations,
        problems=problems + driver.refused[:10],
        settle_seconds=None if settle_seconds is None else round(settle_seconds, 1),
        load_seconds=round(load_seconds, 1),
        run_seconds=round(time.monotonic() - began, 1),
        fault_log=run.log,
        notes={
            **run.notes,
            "cancel answers": dict(driver.cancels),
            **({"answers retried": dict(sorted(driver.retried.items()))} if driver.retried else {}),
        },
        services=run.services,
        machine=machine,
    )


def _mix_problems(run: ChaosRun) -> list[str]:
    """Outcomes no fault excuses: an order nobody could pay for, or stock nobody had, confirmed."""
    return [
        f"order {p.order_id} ({p.kind}) was CONFIRMED"
        for p in run.driver.placed
        if p.kind in NEVER_CONFIRMED and run.orders.get(p.order_id, {}).get("status") == "CONFIRMED"
    ]
