"""GET /v1/orders: a read-only, keyset-paginated listing in creation order."""

import uuid
from typing import Any

import pytest

pytestmark = pytest.mark.integration


async def place(client, sku: str, customer: str, quantity: int = 1) -> dict[str, Any]:
    body = {"customer_id": customer, "items": [{"sku": sku, "quantity": quantity}]}
    response = await client.post("/v1/orders", json=body)
    assert response.status_code == 202, response.text
    return response.json()


async def list_orders(client, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/orders", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def walk(client, **params: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """All orders a walk over the pages yields, and the size of each page."""
    orders: list[dict[str, Any]] = []
    sizes: list[int] = []
    after = None
    while True:
        page = await list_orders(client, **params, **({"after": after} if after else {}))
        orders += page["orders"]
        sizes.append(len(page["orders"]))
        if page["next"] is None:
            return orders, sizes
        assert page["next"] == page["orders"][-1]["order_id"]
        after = page["next"]
        assert len(sizes) < 100, "the walk does not end"


async def test_pages_walk_every_order_once_in_creation_order(client, product):
    sku = await product(price=120)
    customer = f"list-{uuid.uuid4().hex[:8]}"
    placed = [await place(client, sku, customer, quantity=n) for n in range(1, 8)]

    orders, sizes = await walk(client, customer_id=customer, limit=3)

    assert sizes == [3, 3, 1]
    assert [o["order_id"] for o in orders] == [o["order_id"] for o in placed]
    assert [(o["created_at"], o["order_id"]) for o in orders] == sorted(
        (o["created_at"], o["order_id"]) for o in orders
    )
    first = orders[0]
    assert set(first) == {
        "order_id",
        "customer_id",
        "status",
        "reason",
        "total_cents",
        "items",
        "created_at",
    }
    assert first["customer_id"] == customer
    assert first["items"] == [{"sku": sku, "quantity": 1, "unit_price_cents": 120}]
    assert [o["total_cents"] for o in orders] == [120 * n for n in range(1, 8)]


async def test_next_is_null_exactly_when_nothing_follows(client, product):
    sku = await product()
    customer = f"list-{uuid.uuid4().hex[:8]}"
    placed = [(await place(client, sku, customer))["order_id"] for _ in range(3)]

    assert (await list_orders(client, customer_id=customer, limit=3))["next"] is None
    page = await list_orders(client, customer_id=customer, limit=2)
    assert page["next"] == placed[1]
    last = await list_orders(client, customer_id=customer, after=placed[2])
    assert last == {"orders": [], "next": None}


async def test_the_cursor_need_not_match_the_filters(client, product):
    sku = await product()
    first, second = f"list-{uuid.uuid4().hex[:8]}", f"list-{uuid.uuid4().hex[:8]}"
    a = (await place(client, sku, first))["order_id"]
    b = (await place(client, sku, second))["order_id"]
    c = (await place(client, sku, first))["order_id"]

    assert [o["order_id"] for o in (await walk(client, customer_id=first))[0]] == [a, c]
    page = await list_orders(client, customer_id=first, after=b)
    assert [o["order_id"] for o in page["orders"]] == [c]
    # Without filters the orders after `a` include `b` and `c`, in that order.
    everything_after_a = (await walk(client, after=a, limit=1000))[0]
    ids = [o["order_id"] for o in everything_after_a]
    assert ids.index(b) < ids.index(c)
    assert a not in ids


async def test_the_status_filter(client, product):
    sku = await product()
    customer = f"list-{uuid.uuid4().hex[:8]}"
    kept = (await place(client, sku, customer))["order_id"]
    cancelled = (await place(client, sku, customer))["order_id"]
    assert (await client.post(f"/v1/orders/{cancelled}/cancel")).status_code == 202

    listed = (await walk(client, customer_id=customer, status="CANCELLED"))[0]
    assert cancelled in [o["order_id"] for o in listed]
    assert all(o["status"] == "CANCELLED" for o in listed)
    mine = next(o for o in listed if o["order_id"] == cancelled)
    assert mine["reason"] == "CUSTOMER_CANCELLED"

    # The other order may time out meanwhile (the test saga timeout is short).
    pending = (await walk(client, customer_id=customer, status="PENDING"))[0]
    assert cancelled not in [o["order_id"] for o in pending]
    assert all(o["status"] == "PENDING" and o["order_id"] == kept for o in pending)
    assert (await walk(client, customer_id=customer, status="CONFIRMED"))[0] == []


@pytest.mark.parametrize(
    "params",
    [
        {"status": "SHIPPED"},
        {"status": "pending"},
        {"status": ""},
        {"customer_id": ""},
        {"customer_id": "a b"},
        {"customer_id": "x" * 65},
        {"limit": 0},
        {"limit": 1001},
        {"limit": -1},
        {"limit": "ten"},
        {"limit": 1.5},
        {"after": "not-a-uuid"},
        {"after": ""},
    ],
)
async def test_bad_parameters_are_refused_with_422(client, params):
    response = await client.get("/v1/orders", params=params)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()


async def test_an_unknown_cursor_is_refused_with_422(client):
    unknown = uuid.uuid4()
    response = await client.get("/v1/orders", params={"after": str(unknown)})
    assert response.status_code == 422, response.text
    assert str(unknown) in response.json()["detail"]


async def test_limits_at_the_bounds_are_accepted(client):
    for limit in (1, 1000):
        page = await list_orders(client, limit=limit)
        assert len(page["orders"]) <= limit
