"""The two designs under comparison, each behind the same small interface.

- `EventDriven`: the real system, a devstack `Stack` whose payment service reaches the
  broker through a fault proxy. "Payment down" stops the payment process.
- `Monolith`: the ANTI-PATTERN in `compare.monolith`, three processes on one PostgreSQL
  server (a database and role each), with the fault proxy in front of payment's HTTP port.

Both count the same things per cell: orders placed, succeeded, failed, still pending,
and orders left inconsistent, plus a latency per order.
"""

import asyncio
import re
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from compare.workload import Answer, Order, Shop, idempotency_key, timed
from devstack import _process
from devstack.client import Json, SagaClient
from devstack.faults import FaultProxy
from devstack.invariants import settle
from devstack.ports import free_port
from devstack.postgres import PostgresServer
from devstack.scenarios import history_complete
from devstack.stack import SERVICES, Stack, wait_healthy

READ_CONCURRENCY = 16


@dataclass
class Settled:
    """What a design says of one cell's orders once it has settled."""

    status: dict[str, str] = field(default_factory=dict)
    """order id -> CONFIRMED, CANCELLED/<reason>, FAILED or PENDING."""
    latency: dict[str, float] = field(default_factory=dict)
    """order id -> seconds from placed to terminal (only the event-driven design has it)."""
    inconsistent: int = 0
    inconsistencies: Counter[str] = field(default_factory=Counter)
    """What is inconsistent, by kind; for the event-driven design, the checker's lines."""


class Design(Protocol):
    """A running system the comparison can load, break and inspect."""

    name: str
    success_status: int
    """The HTTP status of an order that was taken (202 for the saga, 201 for the monolith)."""

    @property
    def payment_proxy(self) -> FaultProxy: ...

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def stop_payment(self) -> None: ...
    def start_payment(self) -> None: ...
    async def seed(self, shop: Shop) -> None: ...
    async def place(self, order: Order) -> Answer: ...
    async def settle(self, shop: Shop, answers: list[Answer]) -> Settled: ...


# -- the event-driven saga ----------------------------------------------------------------


class EventDriven:
    """The real services, with payment's Kafka traffic behind a fault proxy."""

    name = "event-driven saga"
    success_status = 202

    def __init__(self, base: Path, progress: Callable[[str], None]) -> None:
        self.stack = Stack(
            base / "saga", free_ports=True, fault_proxies=("payment",), progress=progress
        )
        self._client: SagaClient | None = None

    @property
    def payment_proxy(self) -> FaultProxy:
        return self.stack.fault_proxy("payment")

    @property
    def client(self) -> SagaClient:
        if self._client is None:
            self._client = SagaClient({svc: self.stack.url(svc) for svc in SERVICES}, timeout=30)
        return self._client

    def start(self) -> None:
        self.stack.start()

    def stop(self) -> None:
        self.stack.stop()

    def stop_payment(self) -> None:
        self.stack.stop_service("payment")

    def start_payment(self) -> None:
        self.stack.start_service("payment")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.__aexit__()

    async def seed(self, shop: Shop) -> None:
        for p in shop.products:
            await self.client.put_product(p.sku, p.name, p.unit_price_cents, p.stock)
        for customer, balance in shop.accounts.items():
            await self.client.put_account(customer, balance)

    async def place(self, order: Order) -> Answer:
        async def send() -> tuple[int, str | None]:
            items = list(order.items)
            response = await self.client.place_order(order.customer_id, items, idempotency_key())
            accepted = response.status_code == 202
            return response.status_code, response.json()["order_id"] if accepted else None

        return await timed(order, send, httpx.TransportError)

    async def settle(self, shop: Shop, answers: list[Answer]) -> Settled:
        """Wait until every saga is over, then ask the invariant checker."""
        ids = [a.order_id for a in answers if a.order_id]
        orders = await self._wait_complete(ids, timeout=120)
        report = await settle(self.client, timeout=30)
        settled = Settled()
        for order_id, order in orders.items():
            settled.status[order_id] = order["status"] + (
                f"/{order['reason']}" if order["status"] == "CANCELLED" else ""
            )
            if (latency := _decided_after(order)) is not None:
                settled.latency[order_id] = latency
        mine = cell_violations(report.violations, set(ids), shop.prefix)
        settled.inconsistencies.update(mine)
        settled.inconsistent = count_inconsistent(mine)
        return settled

    async def _wait_complete(self, ids: list[str], timeout: float) -> dict[str, Json]:
        """Every order, re-read until its history is complete or `timeout` s pass."""
        gate = asyncio.Semaphore(READ_CONCURRENCY)
        orders: dict[str, Json] = {}

        async def read(order_id: str) -> None:
            async with gate:
                orders[order_id] = await self.client.order(order_id)

        deadline = asyncio.get_running_loop().time() + timeout
        pending = ids
        while pending:
            await asyncio.gather(*(read(i) for i in pending))
            pending = [i for i in pending if not history_complete(orders[i])]
            if not pending or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        return orders


def _decided_after(order: Json) -> float | None:
    """Seconds from the order's creation to its first decision, by its own history."""
    at = {
        step["step"]: datetime.fromisoformat(step["at"]).timestamp()
        for step in reversed(order["history"])
    }
    decided = [at[s] for s in ("OrderConfirmed", "OrderCancelled") if s in at]
    return min(decided) - at["OrderCreated"] if decided and "OrderCreated" in at else None


_ORDER_ID = re.compile(r"order ([0-9a-f-]{36})")


def cell_violations(violations: list[str], order_ids: set[str], prefix: str) -> list[str]:
    """The checker's lines about this cell: its orders, or its SKUs and customers."""
    return [
        v for v in violations if v.startswith(f"{prefix}-") or set(_ORDER_ID.findall(v)) & order_ids
    ]


def count_inconsistent(violations: list[str]) -> int:
    """Each order the lines name once, plus each line that names no order."""
    named = {m for v in violations for m in _ORDER_ID.findall(v)}
    return len(named) + sum(not _ORDER_ID.search(v) for v in violations)


# -- the distributed monolith (ANTI-PATTERN) ----------------------------------------------


class Monolith:
    """`compare.monolith`'s three apps, with a fault proxy in front of payment's HTTP port."""

    name = "distributed monolith"
    success_status = 201
    apps = ("payment", "inventory", "order")

    def __init__(self, base: Path, progress: Callable[[str], None]) -> None:
        self.base = base / "monolith"
        self.progress = progress
        self.ports = {app: free_port() for app in self.apps}
        self.postgres = PostgresServer(self.base / "pg", free_port())
        self.urls: dict[str, str] = {}
        self._proxy: FaultProxy | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._http: httpx.AsyncClient | None = None

    @property
    def payment_proxy(self) -> FaultProxy:
        assert self._proxy is not None, "not started"
        return self._proxy

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            limits = httpx.Limits(max_connections=512)
            self._http = httpx.AsyncClient(timeout=30, limits=limits)
        return self._http

    def start(self) -> None:
        try:
            self.base.mkdir(parents=True, exist_ok=True)
            self.postgres.start()
            for app in self.apps:
                self.urls[app] = self.postgres.provision(
                    f"mono_{app}", f"mono_{app}", secrets.token_urlsafe(12)
                )
            self._proxy = FaultProxy(
                "127.0.0.1", self.ports["payment"], protocol="http", name="monolith payment"
            )
            self._proxy.start()
            for app in self.apps:
                self._spawn(app)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for app in reversed(self.apps):
            if app in self._procs:
                _process.stop_process(self._procs.pop(app))
        if self._proxy is not None:
            self._proxy.stop()
        self.postgres.stop()

    def stop_payment(self) -> None:
        _process.stop_process(self._procs.pop("payment"))

    def start_payment(self) -> None:
        self._spawn("payment")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def url(self, app: str) -> str:
        return f"http://127.0.0.1:{self.ports[app]}"

    def _spawn(self, app: str) -> None:
        args = [sys.executable, "-m", "compare.monolith", app, f"--port={self.ports[app]}"]
        args.append(f"--database-url={self.urls[app]}")
        if app == "order":
            args += [f"--payment-url=http://{self.payment_proxy.address}"]
            args += [f"--inventory-url={self.url('inventory')}"]
        log_path = self.base / f"{app}.log"
        with log_path.open("ab") as log:
            self._procs[app] = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_healthy(
            self._procs[app], f"{self.url(app)}/health", name=app, log_path=log_path, timeout=60
        )

    async def seed(self, shop: Shop) -> None:
        for p in shop.products:
            stock = {"stock": p.stock}
            price = {"unit_price_cents": p.unit_price_cents}
            for app, path, params in (("inventory", "products", stock), ("order", "prices", price)):
                response = await self.http.put(f"{self.url(app)}/{path}/{p.sku}", params=params)
                response.raise_for_status()
        for customer, balance in shop.accounts.items():
            url = f"{self.url('payment')}/accounts/{customer}"
            (await self.http.put(url, params={"balance_cents": balance})).raise_for_status()

    async def place(self, order: Order) -> Answer:
        async def send() -> tuple[int, str | None]:
            response = await self.http.post(f"{self.url('order')}/orders", json=order.body())
            body = response.json() if response.status_code in (201, 502) else {}
            return response.status_code, body.get("order_id")

        return await timed(order, send, httpx.TransportError)

    async def settle(self, shop: Shop, answers: list[Answer]) -> Settled:  # noqa: ARG002
        """Nothing is in flight once the answers are in: compare the three databases.

        Every order of the cell is in the order database, answered or not.
        """
        orders, charges, reservations = await asyncio.gather(
            *(
                self._get(app, path)
                for app, path in (
                    ("order", "orders"),
                    ("payment", "charges"),
                    ("inventory", "reservations"),
                )
            )
        )
        charged = Counter(c["order_id"] for c in charges)
        reserved = {r["order_id"] for r in reservations}
        settled = Settled()
        for order in orders:
            if not order["customer_id"].startswith(f"{shop.prefix}-"):
                continue
            order_id, status = order["order_id"], order["status"]
            settled.status[order_id] = status
            problem = monolith_inconsistency(status, charged[order_id], order_id in reserved)
            if problem:
                settled.inconsistent += 1
                settled.inconsistencies[problem] += 1
        return settled

    async def _get(self, app: str, path: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.url(app)}/{path}")
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()
        return rows


def monolith_inconsistency(status: str, charges: int, reserved: bool) -> str | None:
    """What is wrong with one monolith order, or None when its three records agree."""
    if status == "CONFIRMED":
        if charges == 1 and reserved:
            return None
        return "confirmed, but not charged once and reserved"
    if status == "PENDING":
        return "left PENDING"
    if charges and reserved:
        return "failed, but charged and stock reserved"
    if charges:
        return "failed, but charged (no refund)"
    if reserved:
        return "failed, but stock reserved"
    return None
