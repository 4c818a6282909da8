"""Version 1 of the inventory service's events.

Saga results go to `inventory.events` (key order id); product state goes to
`inventory.products` (key SKU).
"""

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class ReservedLine(BaseModel):
    """Units of one SKU held for an order."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str = Field(description="Product SKU.")
    quantity: int = Field(ge=1, description="Units.")


class StockReserved(BaseModel):
    """Every line of the order was reserved (all or nothing)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    items: list[ReservedLine] = Field(description="What was reserved.")


class StockReservationFailed(BaseModel):
    """At least one line could not be reserved, so nothing was."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    reason: str = Field(description="Why, e.g. `OUT_OF_STOCK`.")
    skus: list[str] = Field(description="The SKUs that were short.")


class StockReleased(BaseModel):
    """Stock held or sold for a cancelled order went back on hand.

    Inventory's answer to every `OrderCancelled`: `items` is empty when nothing was held,
    and then an `OrderCreated` for the order arriving later (a replay) reserves nothing.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    items: list[ReservedLine] = Field(
        description="What went back on hand (now or at an earlier answer); empty if nothing."
    )


class StockSold(BaseModel):
    """The units held for a confirmed order are sold: inventory's answer to `OrderConfirmed`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    items: list[ReservedLine] = Field(description="What was sold.")


class ProductUpdated(BaseModel):
    """A product's catalog data changed (stock levels are not replicated)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str = Field(description="Product SKU.")
    name: str = Field(description="Display name.")
    unit_price_cents: int = Field(ge=0, description="Price of one unit, in cents.")
    version: int = Field(
        ge=1, description="Increases with every change; replicas ignore older versions."
    )
