"""`make demo`: a fresh stack, the workshop scenarios, a readable report, a clean exit."""

import asyncio
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from devstack.client import Json, SagaClient
from devstack.invariants import settle
from devstack.scenarios import Outcome, Scenarios
from devstack.stack import SERVICES, Stack

Print = Callable[[str], None]


def run_demo(out: Print = print) -> int:
    """Run the demo on a fresh stack on free ports; return the exit status (0: all as expected)."""

    def progress(line: str) -> None:
        out(f"  {line}")

    with (
        tempfile.TemporaryDirectory(prefix="saga-demo-") as base,
        Stack(Path(base), free_ports=True, progress=progress) as stack,
    ):
        urls = {svc: stack.url(svc) for svc in SERVICES}
        out("")
        return asyncio.run(_scenarios(urls, out))


async def _scenarios(urls: dict[str, str], out: Print) -> int:
    async with SagaClient(urls) as client:
        scenarios = Scenarios(client, tag="demo")
        out("Running the scenarios: happy path, out of stock, payment declined,")
        out("customer cancellation, and 20 concurrent orders for the last 5 units.\n")
        outcomes = await scenarios.run_all()
        report = await settle(client)
        # Re-read the orders: compensation steps may land after an order went terminal.
        for outcome in outcomes:
            outcome.order = await scenarios.wait_for_history(outcome.order["order_id"])
        _print_outcomes(outcomes, out)
        await _print_books(client, scenarios, out)
    problems = report.violations
    unexpected = [o for o in outcomes if not o.as_expected]
    for outcome in unexpected:
        out(f"UNEXPECTED: {outcome.scenario}: {outcome.order['status']} {outcome.order['reason']}")
    for problem in problems:
        out(f"INVARIANT BROKEN: {problem}")
    ok = not unexpected and not problems
    out(
        "\nAll orders ended as expected; stock and money are conserved." if ok else "\nDemo FAILED."
    )
    return 0 if ok else 1


def _print_outcomes(outcomes: list[Outcome], out: Print) -> None:
    out(f"{'scenario':<18} {'order':<9} {'customer':<12} {'total':>9}  {'status':<10} reason")
    shown: set[tuple[str, str]] = set()
    for outcome in outcomes:
        order = outcome.order
        out(
            f"{outcome.scenario:<18} {order['order_id'][:8]:<9} {order['customer_id']:<12} "
            f"{_money(order['total_cents']):>9}  {order['status']:<10} {order['reason'] or '-'}"
        )
        # One saga history per scenario and status is enough to see what happened.
        if (outcome.scenario, order["status"]) not in shown:
            shown.add((outcome.scenario, order["status"]))
            _print_history(order, out)
    burst = Counter(o.order["status"] for o in outcomes if o.scenario == "last units burst")
    out(f"\nlast units burst: {dict(burst)} (5 units in stock, 20 orders)\n")


def _print_history(order: Json, out: Print) -> None:
    start = datetime.fromisoformat(order["history"][0]["at"])
    for entry in order["history"]:
        offset_ms = (datetime.fromisoformat(entry["at"]) - start).total_seconds() * 1000
        details = {k: v for k, v in entry.items() if k not in ("step", "at")}
        extra = "  " + ", ".join(f"{k}={v}" for k, v in details.items()) if details else ""
        out(f"{'':<20}+{offset_ms:7.0f} ms  {entry['step']}{extra}")


async def _print_books(client: SagaClient, scenarios: Scenarios, out: Print) -> None:
    out(f"{'sku':<14} {'received':>9} {'available':>9} {'reserved':>8} {'sold':>5}")
    for sku in (scenarios.widget, scenarios.gadget, scenarios.last):
        p = await client.product(sku)
        out(f"{sku:<14} {p['received']:>9} {p['available']:>9} {p['reserved']:>8} {p['sold']:>5}")
    out("")
    out(f"{'customer':<14} {'deposited':>11} {'charged':>9} {'refunded':>9} {'balance':>9}")
    customers = sorted(scenarios.accounts())
    for customer in customers[:4]:
        a = await client.account(customer)
        out(
            f"{customer:<14} {_money(a['deposited_cents']):>11} "
            f"{_money(a['charged_cents']):>9} {_money(a['refunded_cents']):>9} "
            f"{_money(a['balance_cents']):>9}"
        )
    out(f"(and {len(customers) - 4} burst customers)\n")


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"
