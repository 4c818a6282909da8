"""The products API: create or replace a product, read its stock."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from chassis.runtime import RuntimeDep
from inventory_service.adapters import repository
from inventory_service.api.schemas import ProductIn, ProductOut
from inventory_service.domain import model
from inventory_service.service_layer import handlers

router = APIRouter(prefix="/v1", tags=["products"])

Sku = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Product SKU: 1-64 characters of letters, digits, `.`, `_` and `-`.",
    ),
]


@router.put("/products/{sku}")
async def put_product(sku: Sku, body: ProductIn, runtime: RuntimeDep) -> ProductOut:
    """Create the product or replace its name, price and units on hand.

    Units held for orders in flight and units sold are kept. The change is published
    as `ProductUpdated` on `inventory.products` (key SKU).
    """
    async with runtime.sessions.begin() as session:
        product = await handlers.put_product(
            session, runtime.outbox, sku, body.name, body.unit_price_cents, body.stock
        )
    return _out(product)


@router.get("/products/{sku}", responses={404: {"description": "Unknown SKU"}})
async def get_product(sku: Sku, runtime: RuntimeDep) -> ProductOut:
    """The product's catalog data and stock: `available`, `reserved` and `sold` units."""
    async with runtime.sessions() as session:
        product = await repository.get_product(session, sku)
    if product is None:
        raise HTTPException(status_code=404, detail=f"unknown product {sku!r}")
    return _out(product)


def _out(product: model.Product) -> ProductOut:
    return ProductOut(
        sku=product.sku,
        name=product.name,
        unit_price_cents=product.unit_price_cents,
        available=product.available,
        reserved=product.reserved,
        sold=product.sold,
    )
