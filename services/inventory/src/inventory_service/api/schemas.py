"""HTTP request and response bodies of the products API."""

from typing import Annotated

from pydantic import BaseModel, Field

from chassis.api import JSON_SCHEMA_INTEGER

# Bounds that keep every sum the saga computes (an order's total: up to 100 lines of
# 1,000,000 units at most 10^10 cents each) inside a PostgreSQL bigint.
MAX_UNIT_PRICE_CENTS = 10**10
MAX_STOCK = 10**9

Price = Annotated[int, Field(strict=True, ge=0, le=MAX_UNIT_PRICE_CENTS), JSON_SCHEMA_INTEGER]
Stock = Annotated[int, Field(strict=True, ge=0, le=MAX_STOCK), JSON_SCHEMA_INTEGER]


class ProductIn(BaseModel):
    """The catalog data and units on hand of a product, as `PUT` sets them."""

    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="Display name (no control characters).",
    )
    unit_price_cents: Price = Field(description="Price of one unit, in integer cents.")
    stock: Stock = Field(description="Units on hand (available); held and sold units are kept.")


class ProductOut(BaseModel):
    """A product with its stock buckets."""

    sku: str = Field(description="Product SKU.")
    name: str = Field(description="Display name.")
    unit_price_cents: int = Field(description="Price of one unit, in integer cents.")
    available: int = Field(description="Units on hand and free to reserve.")
    reserved: int = Field(description="Units held for orders in flight.")
    sold: int = Field(description="Units sold to confirmed orders.")
    received: int = Field(
        description="Net units ever put in by PUT; always available + reserved + sold."
    )


class ProductPage(BaseModel):
    """One page of the product ledger, in SKU order."""

    products: list[ProductOut] = Field(description="Products, in SKU (byte) order.")
    next: str | None = Field(
        description="The last SKU of this page when more follow (pass it as `after`), else null."
    )
