"""The order API: place, read and cancel orders; read the catalog replica."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, HTTPException, Path, status

from chassis.runtime import RuntimeDep
from order_service.adapters import repository
from order_service.api.schemas import Identifier, OrderOut, PlaceOrderIn, ProductOut
from order_service.service_layer import handlers

router = APIRouter(prefix="/v1", tags=["orders"])

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
]


@router.post("/orders", status_code=status.HTTP_202_ACCEPTED)
async def place_order(
    body: PlaceOrderIn, runtime: RuntimeDep, idempotency_key: IdempotencyKey = None
) -> OrderOut:
    """Place an order. It is PENDING until payment and inventory have answered.

    Prices come from the local catalog replica; unknown SKUs are refused with 422.
    Repeating a request with the same `Idempotency-Key` returns the same order; the
    same key with a different body is refused with 409.
    """
    items = [(item.sku, item.quantity) for item in body.items]
    order = await handlers.place_order(
        runtime.sessions, runtime.outbox, body.customer_id, items, idempotency_key
    )
    return OrderOut.of(order)


@router.get("/orders/{order_id}")
async def get_order(order_id: UUID, runtime: RuntimeDep) -> OrderOut:
    """The order with its status, reason and saga history."""
    return OrderOut.of(await handlers.get_order(runtime.sessions, order_id))


@router.post("/orders/{order_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel_order(order_id: UUID, runtime: RuntimeDep) -> OrderOut:
    """Cancel a PENDING or CONFIRMED order; refund and restock follow. 409 if already cancelled."""
    return OrderOut.of(await handlers.cancel_order(runtime.sessions, runtime.outbox, order_id))


@router.get("/catalog/{sku}", tags=["catalog"])
async def get_catalog_product(
    sku: Annotated[Identifier, Path()], runtime: RuntimeDep
) -> ProductOut:
    """This service's replica of a product; 404 until the replica has received it."""
    async with runtime.sessions.begin() as session:
        product = (await repository.products(session, [sku])).get(sku)
    if product is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"product {sku} is not in the catalog")
    return ProductOut.of(product)
