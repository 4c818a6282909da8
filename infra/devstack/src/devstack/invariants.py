"""The saga's invariants, checked from the outside through the services' HTTP APIs.

After every scenario: every order is terminal, its history shows that payment and
inventory both answered (events are not lost), and a cancelled order's history
shows the compensation of what had succeeded; per SKU, stock is conserved
(available + reserved + sold = stock put) with no reservation left behind and
`sold` equal to the units of CONFIRMED orders; per order, charges - refunds equal
its total if CONFIRMED and 0 otherwise, with at most one charge and one refund; per
customer, the balance equals the balance put minus what their orders kept.
"""

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from devstack.client import TERMINAL, Json, SagaClient


@dataclass
class Ledger:
    """What a scenario did: stock and balances it put, and the orders it placed."""

    stock: dict[str, int] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    orders: list[str] = field(default_factory=list)


async def violations(client: SagaClient, ledger: Ledger) -> list[str]:
    """Every invariant the system breaks right now (empty when all hold)."""
    orders = await asyncio.gather(*(client.order(order_id) for order_id in ledger.orders))
    problems = [
        f"order {o['order_id']} is still {o['status']}"
        for o in orders
        if o["status"] not in TERMINAL
    ]
    problems += [problem for order in orders for problem in _history_violations(order)]
    problems += await _stock_violations(client, ledger, orders)
    problems += await _money_violations(client, ledger, orders)
    return problems


_COMPENSATION = {"PaymentSucceeded": "PaymentRefunded", "StockReserved": "StockReleased"}


_ANSWERS = {
    "payment": ("PaymentSucceeded", "PaymentFailed"),
    "inventory": ("StockReserved", "StockReservationFailed"),
}


def _history_violations(order: Json) -> list[str]:
    """A terminal order's history shows both services' answers (late ones included) and,
    if it was cancelled, the compensation of each step that had succeeded.
    """
    if order["status"] not in TERMINAL:
        return []
    steps = [entry["step"] for entry in order["history"]]
    problems = [
        f"order {order['order_id']}: no answer from {service} in its history"
        for service, answers in _ANSWERS.items()
        if not set(answers) & set(steps)
    ]
    if order["status"] == "CANCELLED":
        problems += [
            f"order {order['order_id']}: {done} without {undo} in its history"
            for done, undo in _COMPENSATION.items()
            if done in steps and undo not in steps
        ]
    return problems


async def _stock_violations(client: SagaClient, ledger: Ledger, orders: list[Json]) -> list[str]:
    sold: Counter[str] = Counter()
    for order in orders:
        if order["status"] == "CONFIRMED":
            for item in order["items"]:
                sold[item["sku"]] += item["quantity"]
    problems = []
    for sku, stock in ledger.stock.items():
        p = await client.product(sku)
        total = p["available"] + p["reserved"] + p["sold"]
        if total != stock:
            problems.append(f"{sku}: available+reserved+sold = {total}, stock put was {stock}")
        if p["reserved"]:
            problems.append(f"{sku}: {p['reserved']} units still reserved")
        if p["sold"] != sold[sku]:
            problems.append(f"{sku}: sold {p['sold']}, CONFIRMED orders hold {sold[sku]}")
    return problems


async def _money_violations(client: SagaClient, ledger: Ledger, orders: list[Json]) -> list[str]:
    kept: Counter[str] = Counter()
    problems = []
    payments = await asyncio.gather(*(client.payments(o["order_id"]) for o in orders))
    for order, order_payments in zip(orders, payments, strict=True):
        amounts: dict[str, list[int]] = {"charge": [], "refund": []}
        for payment in order_payments:
            amounts[payment["kind"]].append(payment["amount_cents"])
        for kind, values in amounts.items():
            if len(values) > 1:
                problems.append(f"order {order['order_id']}: {len(values)} {kind}s")
        net = sum(amounts["charge"]) - sum(amounts["refund"])
        expected = order["total_cents"] if order["status"] == "CONFIRMED" else 0
        if net != expected:
            problems.append(
                f"order {order['order_id']} ({order['status']}): kept {net} cents, expected {expected}"
            )
        kept[order["customer_id"]] += net
    for customer, balance in ledger.balances.items():
        account = await client.account(customer)
        if account["balance_cents"] != balance - kept[customer]:
            problems.append(
                f"{customer}: balance {account['balance_cents']}, "
                f"expected {balance} - {kept[customer]} kept by orders"
            )
    return problems


async def settle(client: SagaClient, ledger: Ledger, timeout: float = 60.0) -> list[str]:
    """Wait until every invariant holds; return the violations left after `timeout` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        problems = await violations(client, ledger)
        if not problems or asyncio.get_running_loop().time() > deadline:
            return problems
        await asyncio.sleep(0.25)
