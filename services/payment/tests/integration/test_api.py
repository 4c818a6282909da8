import asyncio
import uuid
from typing import Any

import httpx
import pytest

from shared_contracts import Topic
from shared_contracts.order.v1 import CancellationReason, OrderCancelled
from shared_contracts.order.v2 import Money, OrderCreated, OrderLine

pytestmark = pytest.mark.integration


def a_customer() -> str:
    return f"cust-{uuid.uuid4().hex[:12]}"


async def test_put_creates_an_account_and_get_returns_it(client):
    customer = a_customer()

    put = await client.put(f"/v1/accounts/{customer}", json={"balance_cents": 1500})
    got = await client.get(f"/v1/accounts/{customer}")

    expected = {
        "customer_id": customer,
        "balance_cents": 1500,
        "deposited_cents": 1500,
        "charged_cents": 0,
        "refunded_cents": 0,
    }
    assert (put.status_code, put.json()) == (200, expected)
    assert (got.status_code, got.json()) == (200, expected)


async def test_put_replaces_the_balance(client):
    customer = a_customer()
    await client.put(f"/v1/accounts/{customer}", json={"balance_cents": 1500})

    put = await client.put(f"/v1/accounts/{customer}", json={"balance_cents": 0})

    assert put.status_code == 200
    assert (await client.get(f"/v1/accounts/{customer}")).json()["balance_cents"] == 0


async def test_each_put_deposits_the_change_of_balance(client):
    customer = a_customer()
    for cents in (1500, 2000, 300, 300, 0, 700):
        put = await client.put(f"/v1/accounts/{customer}", json={"balance_cents": cents})
        assert put.json()["deposited_cents"] == cents  # no charges: deposited == balance
    got = (await client.get(f"/v1/accounts/{customer}")).json()
    assert (got["balance_cents"], got["deposited_cents"]) == (700, 700)


async def _walk_accounts(client: httpx.AsyncClient, limit: int) -> list[dict[str, Any]]:
    """Every account, page by page, checking each page's shape and cursor."""
    seen: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": limit} | ({"after": after} if after else {})
        response = await client.get("/v1/accounts", params=params)
        assert response.status_code == 200
        page = response.json()
        assert len(page["accounts"]) <= limit
        seen += page["accounts"]
        if page["next"] is None:
            return seen
        assert page["next"] == page["accounts"][-1]["customer_id"]
        after = page["next"]


async def test_pages_visit_every_account_once_in_order_with_balanced_books(client):
    mine = [f"{a_customer()}-{n}" for n in range(7)]
    for n, customer in enumerate(reversed(mine)):
        await client.put(f"/v1/accounts/{customer}", json={"balance_cents": 100 * n})

    accounts = await _walk_accounts(client, 3)

    ids = [a["customer_id"] for a in accounts]
    assert ids == sorted(set(ids))  # strictly increasing: each account once, in order
    assert set(mine) <= set(ids)
    for a in accounts:
        assert set(a) == {
            "customer_id",
            "balance_cents",
            "deposited_cents",
            "charged_cents",
            "refunded_cents",
        }
        assert a["balance_cents"] == a["deposited_cents"] - a["charged_cents"] + a["refunded_cents"]
    assert await _walk_accounts(client, 1000) == accounts


async def test_a_page_after_an_id_starts_strictly_after_it(client):
    prefix = a_customer()
    for n in range(3):
        await client.put(f"/v1/accounts/{prefix}-{n}", json={"balance_cents": 10 + n})

    response = await client.get("/v1/accounts", params={"after": f"{prefix}-0", "limit": 2})

    assert response.status_code == 200
    page = response.json()
    assert page["accounts"] == [
        {
            "customer_id": f"{prefix}-{n}",
            "balance_cents": 10 + n,
            "deposited_cents": 10 + n,
            "charged_cents": 0,
            "refunded_cents": 0,
        }
        for n in (1, 2)
    ]


async def test_the_page_after_the_last_account_is_empty_with_no_next(client):
    response = await client.get("/v1/accounts", params={"after": "zzzz"})
    assert (response.status_code, response.json()) == (200, {"accounts": [], "next": None})


async def test_the_default_page_holds_up_to_100(client):
    await client.put(f"/v1/accounts/{a_customer()}", json={"balance_cents": 1})
    response = await client.get("/v1/accounts")
    assert response.status_code == 200
    assert 1 <= len(response.json()["accounts"]) <= 100


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": -1},
        {"limit": "ten"},
        {"limit": 1.5},
        {"after": ""},
        {"after": "has space"},
        {"after": "x" * 65},
    ],
)
async def test_bad_paging_is_422(client, params):
    response = await client.get("/v1/accounts", params=params)
    assert response.status_code == 422


async def test_an_unknown_account_is_404(client):
    response = await client.get(f"/v1/accounts/{a_customer()}")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"balance_cents": -1},
        {"balance_cents": 1.5},
        {"balance_cents": 10**15 + 1},
        {"balance_cents": "10"},
        {"balance_cents": None},
        {"balance_cents": True},
        {},
        [],
    ],
)
async def test_a_bad_balance_is_422_and_writes_nothing(client, body):
    customer = a_customer()

    response = await client.put(f"/v1/accounts/{customer}", json=body)

    assert response.status_code == 422
    assert response.json()["detail"]
    assert (await client.get(f"/v1/accounts/{customer}")).status_code == 404


async def test_a_missing_body_is_422(client):
    response = await client.put(f"/v1/accounts/{a_customer()}")
    assert response.status_code == 422


async def test_a_body_that_is_not_json_is_422(client):
    response = await client.put(
        f"/v1/accounts/{a_customer()}",
        content=b"balance=5",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize("customer", ["x" * 65, "has space", "caf%C3%A9", "semi;colon"])
async def test_a_bad_customer_id_is_422(client, customer):
    put = await client.put(f"/v1/accounts/{customer}", json={"balance_cents": 1})
    got = await client.get(f"/v1/accounts/{customer}")
    assert (put.status_code, got.status_code) == (422, 422)


async def test_a_customer_id_of_64_allowed_characters_is_accepted(client):
    customer = ("A-z_0.9" * 10)[:64]
    response = await client.put(f"/v1/accounts/{customer}", json={"balance_cents": 1})
    assert response.status_code == 200


async def test_an_order_without_payments_has_an_empty_list(client):
    response = await client.get("/v1/payments", params={"order_id": str(uuid.uuid4())})
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize("params", [{}, {"order_id": "not-a-uuid"}, {"order_id": ""}])
async def test_payments_need_an_order_id_that_is_a_uuid(client, params):
    response = await client.get("/v1/payments", params=params)
    assert response.status_code == 422


async def _wait_for_payments(
    client: httpx.AsyncClient, order_id: uuid.UUID, count: int
) -> list[dict[str, Any]]:
    async with asyncio.timeout(20):
        while True:
            response = await client.get("/v1/payments", params={"order_id": str(order_id)})
            assert response.status_code == 200
            if len(response.json()) >= count:
                return list(response.json())
            await asyncio.sleep(0.1)


async def test_the_saga_charges_then_refunds_through_the_broker(client, publish, events_on_topic):
    customer, order_id = a_customer(), uuid.uuid4()
    await client.put(f"/v1/accounts/{customer}", json={"balance_cents": 1000})
    created = OrderCreated(
        order_id=order_id,
        customer_id=customer,
        lines=[
            OrderLine(sku="sku-1", quantity=2, unit_price=Money(amount_cents=300, currency="EUR"))
        ],
        total=Money(amount_cents=600, currency="EUR"),
    )
    cancelled = OrderCancelled(order_id=order_id, reason=CancellationReason.OUT_OF_STOCK)
    for event in (created, cancelled):
        await publish(Topic.ORDER_EVENTS, str(order_id), event)

    payments = await _wait_for_payments(client, order_id, 2)

    assert [(p["kind"], p["amount_cents"], p["customer_id"]) for p in payments] == [
        ("charge", 600, customer),
        ("refund", 600, customer),
    ]
    assert {p["order_id"] for p in payments} == {str(order_id)}
    assert (await client.get(f"/v1/accounts/{customer}")).json() == {
        "customer_id": customer,
        "balance_cents": 1000,
        "deposited_cents": 1000,
        "charged_cents": 600,
        "refunded_cents": 600,
    }
    assert await events_on_topic(Topic.PAYMENT_EVENTS, str(order_id), 2) == [
        "PaymentSucceeded",
        "PaymentRefunded",
    ]
