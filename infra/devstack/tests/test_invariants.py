"""The invariant checker flags each kind of broken state (a fake client stands in for HTTP)."""

import copy
from typing import Any

import pytest

from devstack.invariants import check, summary

ORDER = "11111111-1111-4111-8111-111111111111"


def healthy() -> dict[str, Any]:
    """One confirmed order of 2 units at 500 cents, and books that agree with it."""
    return {
        "orders": [
            {
                "order_id": ORDER,
                "customer_id": "ada",
                "status": "CONFIRMED",
                "total_cents": 1000,
                "items": [{"sku": "book", "quantity": 2, "unit_price_cents": 500}],
            }
        ],
        "products": [{"sku": "book", "available": 8, "reserved": 0, "sold": 2, "received": 10}],
        "accounts": [
            {
                "customer_id": "ada",
                "balance_cents": 4000,
                "deposited_cents": 5000,
                "charged_cents": 1000,
                "refunded_cents": 0,
            }
        ],
        "payments": {ORDER: [{"kind": "charge", "amount_cents": 1000}]},
    }


class FakeClient:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    async def orders(self) -> list[dict[str, Any]]:
        return self.state["orders"]

    async def products(self) -> list[dict[str, Any]]:
        return self.state["products"]

    async def accounts(self) -> list[dict[str, Any]]:
        return self.state["accounts"]

    async def payments(self, order_id: str) -> list[dict[str, Any]]:
        return self.state["payments"][order_id]


async def violations_of(state: dict[str, Any]) -> list[str]:
    return (await check(FakeClient(state))).violations  # type: ignore[arg-type]


async def test_a_consistent_system_has_no_violation():
    report = await check(FakeClient(healthy()))  # type: ignore[arg-type]
    assert report.violations == []
    assert summary(report)[-1] == "invariants: all hold"


def broken(path: str, value: Any) -> dict[str, Any]:
    state = copy.deepcopy(healthy())
    *keys, last = path.split(".")
    target: Any = state
    for key in keys:
        target = target[int(key)] if key.isdigit() else target[key]
    target[last] = value
    return state


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (broken("orders.0.status", "PENDING"), "is still PENDING"),
        (broken("products.0.available", 9), "received 10"),
        (broken("products.0.reserved", 1), "left reserved"),
        (broken("products.0.received", 11), "received 11"),
        (broken("accounts.0.balance_cents", 3000), "deposited - charged + refunded"),
        (broken("accounts.0.refunded_cents", 1000), "CONFIRMED orders total 1000"),
        (
            broken("payments", {ORDER: [{"kind": "charge", "amount_cents": 1000}] * 2}),
            "2 charges",
        ),
        (broken("payments", {ORDER: []}), "kept 0 cents, expected 1000"),
        (broken("accounts", []), "CONFIRMED orders but no account"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
async def test_each_broken_invariant_is_reported(state, expected):
    found = await violations_of(state)
    assert any(expected in violation for violation in found), found


async def test_a_cancelled_order_must_keep_no_money_and_sell_nothing():
    state = broken("orders.0.status", "CANCELLED")
    found = await violations_of(state)
    assert any("kept 1000 cents, expected 0" in v for v in found)
    assert any("sold 2, CONFIRMED orders hold 0" in v for v in found)
