"""The workshop controls, and the saga console that shows them: run by `make up`, used by `make scenario`.

The launcher owns the stack's processes, so the controls that stop and start them live
here, beside `Stack`; the console (`saga_console`) only shows them and calls them. The
order controls place orders through the public API like any client, reusing
`Scenarios` with a catalog and customers of their own (tag `workshop`).

Every control returns at once with what it did; the console shows what follows.
"""

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import ClassVar

import httpx

from devstack.client import SagaClient
from devstack.ports import check_port_free
from devstack.scenarios import Scenarios
from devstack.stack import SERVICES, Stack, env_port
from saga_console.app import ConsoleConfig, create_app
from saga_console.controls import ControlInfo, ControlResult
from saga_console.server import ConsoleServer

CONSOLE_PORT_ENV = "CONSOLE_PORT"
DEFAULT_CONSOLE_PORT = 8000
SLOW_MS = 200
"""How much later `slow-<svc>` lets each of the service's requests reach the broker."""

_ORDER_CONTROLS = (
    ControlInfo(
        "place-order",
        "Place one order",
        "orders",
        "Alice orders 2 widgets: watch it be charged and reserved in parallel, then confirmed and sold.",
    ),
    ControlInfo(
        "burst",
        "Place a burst of 20",
        "orders",
        "Twenty customers order a widget each, all at once: twenty sagas side by side.",
    ),
    ControlInfo(
        "sell-out",
        "Make a product run out",
        "orders",
        "The limited edition is restocked to 5 units and 20 customers race for them: "
        "5 are confirmed, 15 cancelled OUT_OF_STOCK and refunded.",
    ),
    ControlInfo(
        "out-of-stock",
        "Order more than there is",
        "orders",
        "Bob orders 10 gadgets of 3: inventory rejects the whole order, payment refunds the charge.",
    ),
    ControlInfo(
        "decline",
        "Make a card decline",
        "orders",
        "Carol ($5.00) orders a $12.50 widget: payment declines, inventory releases what it reserved.",
    ),
)
_WHILE_DOWN = {
    "order": "no order is accepted; payment's and inventory's answers wait in the broker",
    "inventory": "orders are accepted, charged, and wait for their stock",
    "payment": "orders are accepted, reserved, and wait for their payment",
}
"""What a trainer sees while a service is down."""

_SERVICE_CONTROLS = tuple(
    control
    for svc in SERVICES
    for control in (
        ControlInfo(
            f"stop-{svc}",
            f"Stop {svc}",
            svc,
            f"SIGTERM the {svc} service, which finishes what it holds and exits: {_WHILE_DOWN[svc]}.",
        ),
        ControlInfo(
            f"kill-{svc}",
            f"Kill {svc}",
            svc,
            f"SIGKILL the {svc} service mid-saga, as a crash would: nothing is finished cleanly.",
        ),
        ControlInfo(
            f"restart-{svc}",
            f"Restart {svc}",
            svc,
            f"Start the {svc} service again (stopping it first if it runs): waiting sagas complete.",
        ),
        ControlInfo(
            f"slow-{svc}",
            f"Slow {svc} down",
            svc,
            f"Every request {svc} sends to the broker arrives {SLOW_MS} ms late, as over a slow "
            "network: its steps take longer, and no order fails for it.",
        ),
        ControlInfo(
            f"heal-{svc}",
            f"Heal {svc}",
            svc,
            f"Take the delay off {svc}'s network: its steps are quick again.",
        ),
    )
)
_BROKER_CONTROLS = (
    ControlInfo(
        "stop-broker",
        "Stop the broker",
        "broker",
        "Stop the local broker: orders are still accepted and wait in each service's outbox. "
        "It keeps messages in memory only, so what it held is lost.",
    ),
    ControlInfo(
        "start-broker",
        "Start the broker",
        "broker",
        "Start the local broker again, empty, and re-create the topics: outboxes drain; "
        "sagas whose events were lost end by timeout and are compensated.",
    ),
)
CONTROLS: tuple[ControlInfo, ...] = (*_ORDER_CONTROLS, *_SERVICE_CONTROLS, *_BROKER_CONTROLS)
"""Every workshop control, in the order the console shows them (`make scenario` lists them too)."""


def console_port(environ: Mapping[str, str]) -> int:
    """The console's port: `CONSOLE_PORT`, else 8000."""
    return env_port(environ, CONSOLE_PORT_ENV, DEFAULT_CONSOLE_PORT)


class WorkshopScenarios(Scenarios):
    """The demo's catalog and customers, with stock and money for a whole workshop's clicking."""

    WIDGET_STOCK = 1_000_000
    FAN_BALANCE_CENTS = 100_000_000


class Workshop:
    """The workshop controls of one running `Stack` (implements `saga_console.controls.Controls`).

    Process controls run one at a time, in a worker thread (the `Stack` API blocks while
    a service starts); order controls run at once, also while a service restarts.
    """

    catalog: ClassVar[tuple[ControlInfo, ...]] = CONTROLS

    def __init__(self, stack: Stack, tag: str = "workshop") -> None:
        self.stack = stack
        self.tag = tag
        self._client: SagaClient | None = None
        self._scenarios: WorkshopScenarios | None = None
        self._seeded = False
        self._seed_lock = asyncio.Lock()
        self._process_lock = asyncio.Lock()
        self._actions: dict[str, Callable[[], Awaitable[ControlResult]]] = {
            "place-order": self._place_order,
            "burst": self._burst,
            "sell-out": self._sell_out,
            "out-of-stock": self._out_of_stock,
            "decline": self._decline,
            "stop-broker": functools.partial(self._broker, start=False),
            "start-broker": functools.partial(self._broker, start=True),
        }
        for svc in SERVICES:
            self._actions[f"stop-{svc}"] = functools.partial(self._stop, svc, kill=False)
            self._actions[f"kill-{svc}"] = functools.partial(self._stop, svc, kill=True)
            self._actions[f"restart-{svc}"] = functools.partial(self._restart, svc)
            self._actions[f"slow-{svc}"] = functools.partial(self._slow, svc, SLOW_MS)
            self._actions[f"heal-{svc}"] = functools.partial(self._slow, svc, 0)

    async def start(self) -> None:
        """Seed the workshop's products and accounts while every service is surely up."""
        await self._ready()

    async def run(self, name: str) -> ControlResult:
        """Run one control; a service that does not answer makes it fail with a clear message."""
        try:
            return await self._actions[name]()
        except httpx.HTTPStatusError as exc:
            return ControlResult(False, f"{exc.request.url} answered {exc.response.status_code}")
        except httpx.TransportError as exc:
            return ControlResult(False, f"{exc.request.url} does not answer (is it stopped?)")

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            await self._client.__aexit__()

    # -- orders ---------------------------------------------------------------------

    async def _ready(self) -> WorkshopScenarios:
        # Created on first use, so that the client belongs to the console's event loop.
        if self._scenarios is None:
            self._client = SagaClient({svc: self.stack.url(svc) for svc in SERVICES})
            self._scenarios = WorkshopScenarios(self._client, self.tag)
        async with self._seed_lock:
            if not self._seeded:
                await self._scenarios.seed()
                self._seeded = True
        return self._scenarios

    async def _place_order(self) -> ControlResult:
        scenarios = await self._ready()
        order_id = await scenarios.place(scenarios.customer("alice"), [(scenarios.widget, 2)])
        return ControlResult(True, f"alice ordered 2 widgets: order {order_id[:8]}", [order_id])

    async def _burst(self) -> ControlResult:
        scenarios = await self._ready()
        order_ids = await scenarios.place_burst(scenarios.widget)
        return ControlResult(True, f"{len(order_ids)} orders placed at once", order_ids)

    async def _sell_out(self) -> ControlResult:
        scenarios = await self._ready()
        sku, name, price, units = scenarios.products()[-1]
        await scenarios.client.put_product(sku, name, price, units)
        order_ids = await scenarios.place_burst(sku)
        return ControlResult(
            True,
            f"{len(order_ids)} orders for the last {units} units of {sku}: "
            f"{units} should be confirmed, the rest cancelled OUT_OF_STOCK",
            order_ids,
        )

    async def _out_of_stock(self) -> ControlResult:
        scenarios = await self._ready()
        order_id = await scenarios.place_out_of_stock()
        return ControlResult(
            True, f"bob ordered 10 gadgets (3 in stock): order {order_id[:8]}", [order_id]
        )

    async def _decline(self) -> ControlResult:
        scenarios = await self._ready()
        order_id = await scenarios.place_payment_declined()
        return ControlResult(
            True, f"carol ($5.00) ordered a $12.50 widget: order {order_id[:8]}", [order_id]
        )

    # -- processes ----------------------------------------------------------------------

    def _running(self, svc: str) -> bool:
        try:
            self.stack.pid(svc)
        except RuntimeError:
            return False
        return True

    async def _stop(self, svc: str, *, kill: bool) -> ControlResult:
        async with self._process_lock:
            if not self._running(svc):
                return ControlResult(False, f"{svc} is not running")
            if kill:
                await asyncio.to_thread(self.stack.kill, svc)
                return ControlResult(True, f"{svc} killed (SIGKILL)")
            await asyncio.to_thread(self.stack.stop_service, svc)
            return ControlResult(True, f"{svc} stopped (SIGTERM)")

    async def _restart(self, svc: str) -> ControlResult:
        async with self._process_lock:
            was_running = self._running(svc)
            if was_running:
                await asyncio.to_thread(self.stack.stop_service, svc)
            started = time.monotonic()
            await asyncio.to_thread(self.stack.start_service, svc)
            took = time.monotonic() - started
            verb = "restarted" if was_running else "started"
            return ControlResult(True, f"{svc} {verb}, ready after {took:.1f} s")

    async def _slow(self, svc: str, delay_ms: float) -> ControlResult:
        try:
            proxy = self.stack.fault_proxy(svc)
        except KeyError:
            return ControlResult(
                False, f"{svc} runs without a fault proxy (Stack(fault_proxies=...))"
            )
        proxy.slow(delay_ms)
        if delay_ms:
            return ControlResult(
                True, f"{svc}'s requests to the broker arrive {delay_ms:g} ms late"
            )
        return ControlResult(True, f"{svc}'s network is quick again")

    async def _broker(self, *, start: bool) -> ControlResult:
        async with self._process_lock:
            try:
                broker = self.stack.broker
            except RuntimeError:
                return ControlResult(False, "the broker is not local (KAFKA_BOOTSTRAP_SERVERS)")
            if (broker.pid is not None) == start:
                return ControlResult(
                    False, f"the broker is {'already' if start else 'not'} running"
                )
            if start:
                await asyncio.to_thread(self.stack.restart_broker)
                return ControlResult(True, "broker started, empty; topics created again")
            await asyncio.to_thread(broker.stop)
            return ControlResult(True, "broker stopped; what it held in memory is gone")


@contextlib.contextmanager
def serve_console(stack: Stack, port: int) -> Iterator[ConsoleServer]:
    """Serve the saga console with the workshop controls of `stack` on 127.0.0.1:`port`."""
    config = ConsoleConfig(
        service_urls={svc: stack.url(svc) for svc in stack.services},
        bootstrap=stack.bootstrap_servers,
    )
    with ConsoleServer(create_app(config, Workshop(stack)), port) as server:
        yield server


def check_console_port(port: int) -> None:
    """Fail before the stack starts if the console's port is taken."""
    check_port_free(port, "saga console", CONSOLE_PORT_ENV)
