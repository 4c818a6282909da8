"""The saga's invariants, checked from the outside through the services' HTTP APIs only.

- every order is terminal (CONFIRMED or CANCELLED);
- per SKU, stock is conserved: available + reserved + sold = received (the units ever
  put in), no units stay reserved, and sold = the units of CONFIRMED orders;
- per customer, money is conserved: balance = deposited - charged + refunded, and
  charged - refunded = the totals of their CONFIRMED orders;
- per order, at most one charge and one refund, and charges - refunds = its total if
  CONFIRMED, 0 if CANCELLED: nobody pays for what they did not get.

They hold once the system is quiet; while events are in flight they may not.
"""

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from devstack.client import TERMINAL, Json, SagaClient

_CONCURRENT_REQUESTS = 16


@dataclass
class Report:
    """What the checker saw and every invariant the system breaks (empty when all hold)."""

    orders: Counter[str] = field(default_factory=Counter)
    """Orders by status."""
    products: int = 0
    accounts: int = 0
    violations: list[str] = field(default_factory=list)


async def check(client: SagaClient) -> Report:
    """Read orders, products, accounts and payments, and check every invariant."""
    orders, products, accounts = await asyncio.gather(
        client.orders(), client.products(), client.accounts()
    )
    payments = await _payments_by_order(client, orders)
    report = Report(Counter(o["status"] for o in orders), len(products), len(accounts))
    report.violations = [
        *(
            f"order {o['order_id']} is still {o['status']}"
            for o in orders
            if o["status"] not in TERMINAL
        ),
        *_stock_violations(products, orders),
        *_order_payment_violations(orders, payments),
        *_account_violations(accounts, orders),
    ]
    return report


async def _payments_by_order(client: SagaClient, orders: list[Json]) -> dict[str, list[Json]]:
    limit = asyncio.Semaphore(_CONCURRENT_REQUESTS)

    async def fetch(order_id: str) -> list[Json]:
        async with limit:
            return await client.payments(order_id)

    ids = [o["order_id"] for o in orders]
    return dict(zip(ids, await asyncio.gather(*(fetch(i) for i in ids)), strict=True))


def _confirmed(orders: list[Json]) -> list[Json]:
    return [o for o in orders if o["status"] == "CONFIRMED"]


def _stock_violations(products: list[Json], orders: list[Json]) -> list[str]:
    sold: Counter[str] = Counter()
    for order in _confirmed(orders):
        for item in order["items"]:
            sold[item["sku"]] += item["quantity"]
    problems = []
    for p in products:
        held = p["available"] + p["reserved"] + p["sold"]
        if held != p["received"]:
            problems.append(
                f"{p['sku']}: available+reserved+sold = {held}, received {p['received']}"
            )
        if p["reserved"]:
            problems.append(f"{p['sku']}: {p['reserved']} units left reserved")
        if p["sold"] != sold[p["sku"]]:
            problems.append(f"{p['sku']}: sold {p['sold']}, CONFIRMED orders hold {sold[p['sku']]}")
    return problems


def _order_payment_violations(orders: list[Json], payments: dict[str, list[Json]]) -> list[str]:
    problems = []
    for order in orders:
        amounts: dict[str, list[int]] = {"charge": [], "refund": []}
        for payment in payments[order["order_id"]]:
            amounts[payment["kind"]].append(payment["amount_cents"])
        for kind, values in amounts.items():
            if len(values) > 1:
                problems.append(f"order {order['order_id']}: {len(values)} {kind}s")
        kept = sum(amounts["charge"]) - sum(amounts["refund"])
        expected = order["total_cents"] if order["status"] == "CONFIRMED" else 0
        if order["status"] in TERMINAL and kept != expected:
            problems.append(
                f"order {order['order_id']} ({order['status']}): kept {kept} cents, expected {expected}"
            )
    return problems


def _account_violations(accounts: list[Json], orders: list[Json]) -> list[str]:
    owed: Counter[str] = Counter()
    for order in _confirmed(orders):
        owed[order["customer_id"]] += order["total_cents"]
    problems = []
    for a in accounts:
        expected = a["deposited_cents"] - a["charged_cents"] + a["refunded_cents"]
        if a["balance_cents"] != expected:
            problems.append(
                f"{a['customer_id']}: balance {a['balance_cents']}, deposited - charged + refunded = {expected}"
            )
        kept = a["charged_cents"] - a["refunded_cents"]
        if kept != owed[a["customer_id"]]:
            problems.append(
                f"{a['customer_id']}: kept {kept} cents, CONFIRMED orders total {owed[a['customer_id']]}"
            )
    known = {a["customer_id"] for a in accounts}
    problems += [f"{c}: CONFIRMED orders but no account" for c in owed if c not in known]
    return problems


async def settle(client: SagaClient, timeout: float = 60.0) -> Report:
    """Check until every invariant holds or `timeout` s pass; return the last report."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        report = await check(client)
        if not report.violations or asyncio.get_running_loop().time() > deadline:
            return report
        await asyncio.sleep(0.25)


def summary(report: Report, most: int = 50) -> list[str]:
    """The report as lines for a terminal: counts, then each violation (at most `most`)."""
    statuses = ", ".join(f"{status} {n}" for status, n in sorted(report.orders.items()))
    lines = [
        f"orders: {report.orders.total()} ({statuses or 'none'})",
        f"products: {report.products}, accounts: {report.accounts}",
    ]
    if not report.violations:
        return [*lines, "invariants: all hold"]
    lines.append(f"invariants: {len(report.violations)} violation(s)")
    lines += [f"  {violation}" for violation in report.violations[:most]]
    if len(report.violations) > most:
        lines.append(f"  ... and {len(report.violations) - most} more")
    return lines
