"""The products API: create or replace a product, read its stock, page through all of it."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from chassis.api import MALFORMED_BODY, UNAVAILABLE, error
from chassis.runtime import RuntimeDep
from inventory_service.api.schemas import ProductIn, ProductOut, ProductPage
from inventory_service.domain import model
from inventory_service.service_layer import handlers

router = APIRouter(prefix="/v1", tags=["products"], responses=UNAVAILABLE)

SKU_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"

Sku = Annotated[
    str,
    Path(
        pattern=SKU_PATTERN,
        description="Product SKU: 1-64 characters of letters, digits, `.`, `_` and `-`.",
    ),
]


@router.put("/products/{sku}", responses=MALFORMED_BODY)
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


@router.get("/products")
async def list_products(
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size, 1-1000.")] = 100,
    after: Annotated[
        str | None,
        Query(pattern=SKU_PATTERN, description="Return only products with a SKU after this one."),
    ] = None,
) -> ProductPage:
    """Page through every product in SKU (byte) order: the stock ledger, read-only.

    Each product carries its buckets and `received`, so a checker can verify
    `available + reserved + sold == received`. Pass the returned `next` as `after` to
    get the following page; `next` is null on the last page.
    """
    async with runtime.sessions() as session:
        products, next_sku = await handlers.list_products(session, limit, after)
    return ProductPage(products=[_out(p) for p in products], next=next_sku)


@router.get("/products/{sku}", responses={404: error("Unknown SKU")})
async def get_product(sku: Sku, runtime: RuntimeDep) -> ProductOut:
    """The product's catalog data and stock: `available`, `reserved`, `sold` and `received` units."""
    async with runtime.sessions() as session:
        product = await handlers.get_product(session, sku)
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
        received=product.received,
    )
