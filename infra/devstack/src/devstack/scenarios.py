"""The workshop scenarios, shared by `make demo` and the end-to-end tests.

Each scenario places orders through the public API, waits for the saga to finish and
returns what happened next to what was expected. SKUs and customers carry a `tag`, so
scenarios of several runs can share one stack without touching each other's numbers.
"""

import asyncio
import contextlib
from dataclasses import dataclass

from devstack.client import TERMINAL, Json, SagaClient


@dataclass
class Outcome:
    """One order of a scenario: the order as the order service shows it, and what we expected."""

    scenario: str
    order: Json
    expected_status: str
    expected_reason: str | None

    @property
    def as_expected(self) -> bool:
        return (self.order["status"], self.order["reason"]) == (
            self.expected_status,
            self.expected_reason,
        )


class Scenarios:
    """Seeds products and accounts, then runs each scenario against a running stack."""

    BURST_ORDERS = 20
    LAST_UNITS = 5
    WIDGET_STOCK = 100
    FAN_BALANCE_CENTS = 20_000

    def __init__(self, client: SagaClient, tag: str, timeout: float = 60.0) -> None:
        self.client = client
        self.orders: list[str] = []
        """Ids of every order the scenarios placed."""
        self.timeout = timeout
        self.tag = tag
        self.widget, self.gadget, self.last = (f"{tag}-widget", f"{tag}-gadget", f"{tag}-last")

    def customer(self, name: str) -> str:
        return f"{self.tag}-{name}"

    async def seed(self) -> None:
        """Products (one with only the last few units) and customers (one nearly broke)."""
        for sku, name, price, stock in self.products():
            await self.client.put_product(sku, name, price, stock)
        for customer_id, balance in self.accounts().items():
            await self.client.put_account(customer_id, balance)

    def products(self) -> list[tuple[str, str, int, int]]:
        """The products as `(sku, name, unit price in cents, stock)`."""
        return [
            (self.widget, "Widget", 1_250, self.WIDGET_STOCK),
            (self.gadget, "Gadget", 4_999, 3),
            (self.last, "Limited edition", 9_900, self.LAST_UNITS),
        ]

    def accounts(self) -> dict[str, int]:
        """The customers and their opening balances."""
        accounts = {self.customer(n): 1_000_000 for n in ("alice", "bob", "dave")}
        accounts[self.customer("carol")] = 500
        fans = {
            self.customer(f"fan{i:02}"): self.FAN_BALANCE_CENTS for i in range(self.BURST_ORDERS)
        }
        return accounts | fans

    async def place(self, customer: str, items: list[tuple[str, int]]) -> str:
        response = await self.client.place_order(customer, items)
        response.raise_for_status()
        order_id: str = response.json()["order_id"]
        self.orders.append(order_id)
        return order_id

    async def finish(
        self, scenario: str, order_id: str, status: str, reason: str | None
    ) -> Outcome:
        order = await self.client.wait_terminal(order_id, self.timeout)
        return Outcome(scenario, order, status, reason)

    async def happy_path(self) -> list[Outcome]:
        order_id = await self.place(self.customer("alice"), [(self.widget, 2), (self.gadget, 1)])
        return [await self.finish("happy path", order_id, "CONFIRMED", None)]

    async def place_out_of_stock(self) -> str:
        """Bob orders more gadgets than exist (10 of 3) and a widget; return the order id."""
        return await self.place(self.customer("bob"), [(self.widget, 1), (self.gadget, 10)])

    async def out_of_stock(self) -> list[Outcome]:
        """More gadgets than exist: the whole order fails, and the charge is refunded."""
        order_id = await self.place_out_of_stock()
        return [await self.finish("out of stock", order_id, "CANCELLED", "OUT_OF_STOCK")]

    async def place_payment_declined(self) -> str:
        """Carol, who has $5.00, orders a $12.50 widget; return the order id."""
        return await self.place(self.customer("carol"), [(self.widget, 1)])

    async def payment_declined(self) -> list[Outcome]:
        """Carol cannot pay: the order fails, and the reserved stock is released."""
        order_id = await self.place_payment_declined()
        return [await self.finish("payment declined", order_id, "CANCELLED", "PAYMENT_DECLINED")]

    async def customer_cancellation(self) -> list[Outcome]:
        """Dave cancels a confirmed order: refund and restock follow."""
        order_id = await self.place(self.customer("dave"), [(self.widget, 3)])
        await self.client.wait_terminal(order_id, self.timeout)
        response = await self.client.cancel(order_id)
        response.raise_for_status()
        return [await self.finish("customer cancels", order_id, "CANCELLED", "CUSTOMER_CANCELLED")]

    async def place_burst(self, sku: str) -> list[str]:
        """Every fan orders one `sku`, all at once; return the order ids."""
        return await asyncio.gather(
            *(self.place(self.customer(f"fan{i:02}"), [(sku, 1)]) for i in range(self.BURST_ORDERS))
        )

    async def burst_for_last_units(self) -> list[Outcome]:
        """Twenty customers at once for five units: exactly five win, nobody oversells."""
        order_ids = await self.place_burst(self.last)
        orders = await asyncio.gather(
            *(self.client.wait_terminal(order_id, self.timeout) for order_id in order_ids)
        )
        # Which five win is up to the race; how many is not.
        winners = {o["order_id"] for o in orders if o["status"] == "CONFIRMED"}
        chosen = winners if len(winners) == self.LAST_UNITS else set()
        return [
            Outcome(
                "last units burst",
                order,
                "CONFIRMED" if order["order_id"] in chosen else "CANCELLED",
                None if order["order_id"] in chosen else "OUT_OF_STOCK",
            )
            for order in orders
        ]

    async def wait_for_history(self, order_id: str) -> Json:
        """The order once its history is complete (see `history_complete`), or as it is after the timeout."""
        order: Json = {}

        async def complete() -> bool:
            nonlocal order
            order = await self.client.order(order_id)
            return history_complete(order)

        with contextlib.suppress(TimeoutError):
            await self.client.wait_for(complete, self.timeout)
        return order

    async def run_all(self) -> list[Outcome]:
        """Seed, then every scenario in turn."""
        await self.seed()
        outcomes: list[Outcome] = []
        for scenario in (
            self.happy_path,
            self.out_of_stock,
            self.payment_declined,
            self.customer_cancellation,
            self.burst_for_last_units,
        ):
            outcomes += await scenario()
        return outcomes


def history_complete(order: Json) -> bool:
    """Terminal, and payment and inventory have answered its decision (`awaiting` is empty).

    Each answer is sent once the service has done everything it will do for the order,
    so no saga step is still in flight. This is what the order service has heard,
    which may trail what payment and inventory have done by a few milliseconds.
    """
    return order["status"] in TERMINAL and not order["awaiting"]
