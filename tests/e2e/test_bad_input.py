"""Bad input gets a clear 4xx from every service, never a 500, and writes nothing."""

import uuid

import pytest

pytestmark = pytest.mark.e2e

BAD_ORDERS = [
    {"customer_id": "alice", "items": []},
    {"customer_id": "alice", "items": [{"sku": "e2e-none", "quantity": 1}]},
    {"customer_id": "alice", "items": [{"sku": "x", "quantity": 0}]},
    {"customer_id": "alice", "items": [{"sku": "x", "quantity": -1}]},
    {"customer_id": "alice", "items": [{"sku": "x"}]},
    {"customer_id": "alice"},
    {"items": [{"sku": "x", "quantity": 1}]},
    "not an object",
]


@pytest.mark.parametrize("body", BAD_ORDERS)
async def test_bad_orders_are_refused(client, body):
    response = await client.request("order", "POST", "/v1/orders", json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]


NO_SUCH_ORDER = uuid.UUID("9b1f3c5e-0d2a-4c7b-8e6f-1a2b3c4d5e6f")
"""An order id no test creates; a constant, so every run collects the same test ids."""


@pytest.mark.parametrize(
    ("svc", "method", "path", "body", "status"),
    [
        ("order", "GET", f"/v1/orders/{NO_SUCH_ORDER}", None, 404),
        ("order", "GET", "/v1/orders/42", None, 422),
        ("order", "POST", f"/v1/orders/{NO_SUCH_ORDER}/cancel", None, 404),
        ("order", "GET", "/v1/catalog/e2e-none", None, 404),
        (
            "inventory",
            "PUT",
            "/v1/products/e2e-bad",
            {"name": "x", "unit_price_cents": -1, "stock": 1},
            422,
        ),
        (
            "inventory",
            "PUT",
            "/v1/products/e2e-bad",
            {"name": "x", "unit_price_cents": 1, "stock": -5},
            422,
        ),
        (
            "inventory",
            "PUT",
            "/v1/products/e2e-bad",
            {"name": "x", "unit_price_cents": 1.5, "stock": 1},
            422,
        ),
        ("inventory", "GET", "/v1/products/e2e-none", None, 404),
        ("payment", "PUT", "/v1/accounts/e2e-bad", {"balance_cents": -1}, 422),
        ("payment", "GET", "/v1/accounts/e2e-none", None, 404),
        ("payment", "GET", "/v1/payments?order_id=nope", None, 422),
    ],
)
async def test_bad_requests_get_the_right_4xx(client, svc, method, path, body, status):
    response = await client.request(svc, method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"]
    if svc == "inventory" and method == "PUT":
        assert (await client.request("inventory", "GET", path)).status_code == 404
