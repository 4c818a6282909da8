"""HTTP request and response bodies of the products API."""

from typing import Annotated

from pydantic import BaseModel, Field

MAX_BIGINT = 2**63 - 1
"""The largest value a PostgreSQL `bigint` column holds."""

Count = Annotated[int, Field(strict=True, ge=0, le=MAX_BIGINT)]


class ProductIn(BaseModel):
    """The catalog data and units on hand of a product, as `PUT` sets them."""

    name: str = Field(min_length=1, max_length=200, description="Display name.")
    unit_price_cents: Count = Field(description="Price of one unit, in integer cents.")
    stock: Count = Field(description="Units on hand (available); held and sold units are kept.")


class ProductOut(BaseModel):
    """A product with its stock buckets."""

    sku: str = Field(description="Product SKU.")
    name: str = Field(description="Display name.")
    unit_price_cents: int = Field(description="Price of one unit, in integer cents.")
    available: int = Field(description="Units on hand and free to reserve.")
    reserved: int = Field(description="Units held for orders in flight.")
    sold: int = Field(description="Units sold to confirmed orders.")
