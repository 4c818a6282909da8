"""/v2/orders renames `customer_id` to `buyer_id`; /v1/orders keeps working, deprecated."""

import uuid

import pytest

pytestmark = pytest.mark.integration

DEPRECATION_HEADERS = {
    "deprecation": "@1795305600",
    "link": '</v2/orders>; rel="successor-version"',
}


def deprecation(response) -> dict[str, str]:
    return {k: response.headers[k] for k in DEPRECATION_HEADERS if k in response.headers}


async def test_v1_and_v2_are_two_views_of_the_same_orders(client, product):
    sku, buyer = await product(price=250), f"buyer-{uuid.uuid4().hex[:8]}"
    placed = await client.post(
        "/v2/orders", json={"buyer_id": buyer, "items": [{"sku": sku, "quantity": 2}]}
    )
    assert placed.status_code == 202, placed.text
    order = placed.json()
    assert (order["buyer_id"], order["total_cents"]) == (buyer, 500)
    assert "customer_id" not in order

    v1 = (await client.get(f"/v1/orders/{order['order_id']}")).json()
    assert v1["customer_id"] == buyer and "buyer_id" not in v1
    assert {k: v for k, v in v1.items() if k != "customer_id"} == {
        k: v for k, v in order.items() if k != "buyer_id"
    }

    page = (await client.get("/v2/orders", params={"buyer_id": buyer})).json()
    assert [(o["order_id"], o["buyer_id"]) for o in page["orders"]] == [(order["order_id"], buyer)]
    assert page["next"] is None

    cancelled = await client.post(f"/v2/orders/{order['order_id']}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (202, "CANCELLED")
    assert (await client.post(f"/v2/orders/{order['order_id']}/cancel")).status_code == 409


async def test_v2_refuses_the_v1_field_name(client, product):
    sku = await product()
    body = {"customer_id": "alice", "items": [{"sku": sku, "quantity": 1}]}
    assert (await client.post("/v2/orders", json=body)).status_code == 422


async def test_every_v1_order_response_says_it_is_deprecated_and_v2_does_not(client, product):
    sku = await product()
    body = {"customer_id": "alice", "items": [{"sku": sku, "quantity": 1}]}
    placed = await client.post("/v1/orders", json=body)
    missing = await client.get(f"/v1/orders/{uuid.uuid4()}")
    for response in (placed, missing, await client.get("/v1/orders", params={"limit": 1})):
        assert deprecation(response) == DEPRECATION_HEADERS
    assert deprecation(await client.get(f"/v2/orders/{placed.json()['order_id']}")) == {}
    assert deprecation(await client.get(f"/v1/catalog/{sku}")) == {}


async def test_the_openapi_document_has_both_and_marks_v1_orders_deprecated(client):
    paths = (await client.get("/openapi.json")).json()["paths"]
    deprecated = {
        (path, method)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if operation.get("deprecated")
    }
    assert deprecated == {
        ("/v1/orders", "post"),
        ("/v1/orders", "get"),
        ("/v1/orders/{order_id}", "get"),
        ("/v1/orders/{order_id}/cancel", "post"),
    }
    assert {"/v2/orders", "/v2/orders/{order_id}", "/v2/orders/{order_id}/cancel"} <= set(paths)
