"""Version 1 of the order service's events (topic `orders.events`, key order id)."""

from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class CancellationReason(StrEnum):
    """Why an order was cancelled."""

    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    TIMEOUT = "TIMEOUT"
    CUSTOMER_CANCELLED = "CUSTOMER_CANCELLED"


class OrderLine(BaseModel):
    """One line of an order, priced from the order service's catalog replica."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str = Field(description="Product SKU.")
    quantity: int = Field(ge=1, description="Units ordered.")
    unit_price_cents: int = Field(ge=0, description="Price of one unit, in cents.")


class OrderCreated(BaseModel):
    """An order was placed: payment charges it and inventory reserves its lines."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    customer_id: str = Field(description="Customer to charge.")
    items: list[OrderLine] = Field(min_length=1, description="Lines to reserve.")
    total_cents: int = Field(ge=0, description="Amount to charge, in cents.")


class OrderConfirmed(BaseModel):
    """Payment and stock both succeeded: inventory turns the reservation into a sale."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")


class OrderCancelled(BaseModel):
    """The order was cancelled: payment refunds and inventory releases what they did."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    reason: CancellationReason = Field(description="Why the order was cancelled.")
