"""Version 2 of `OrderCreated`: money as an amount with its currency, lines renamed.

A v1 reader cannot read it (`items` is now `lines`, `total_cents` is now `total`), so it
is a new version, not a change to v1. During the deprecation window the order service
publishes every order in both versions (see `Envelope.versions`); each consumer reads
the newest it knows and moves to v2 on its own schedule (docs/evolving-contracts.md).
The order service's other events are unchanged and stay in v1.
"""

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Money(BaseModel):
    """An amount in the minor unit of its currency."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    amount_cents: int = Field(ge=0, description="Amount, in cents (minor units).")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. `EUR`.")


class OrderLine(BaseModel):
    """One line of an order, priced from the order service's catalog replica."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str = Field(description="Product SKU.")
    quantity: int = Field(ge=1, description="Units ordered.")
    unit_price: Money = Field(description="Price of one unit.")


class OrderCreated(BaseModel):
    """An order was placed: payment charges it and inventory reserves its lines."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    customer_id: str = Field(description="Customer to charge.")
    lines: list[OrderLine] = Field(min_length=1, description="Lines to reserve.")
    total: Money = Field(description="Amount to charge.")
