"""Version 1 of the payment service's events (topic `payments.events`, key order id)."""

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class PaymentSucceeded(BaseModel):
    """The customer was charged for the order."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    customer_id: str = Field(description="The customer charged.")
    amount_cents: int = Field(ge=0, description="Amount charged, in cents.")


class PaymentFailed(BaseModel):
    """The charge was declined; nothing was charged."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    customer_id: str = Field(description="The customer.")
    reason: str = Field(description="Why, e.g. `INSUFFICIENT_FUNDS` or `UNKNOWN_ACCOUNT`.")


class PaymentRefunded(BaseModel):
    """A charge for a cancelled order was refunded (now, or when the order was first cancelled).

    Payment's answer to `OrderCancelled` when the order was charged.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    customer_id: str = Field(description="The customer refunded.")
    amount_cents: int = Field(ge=0, description="Amount refunded, in cents.")


class PaymentVoided(BaseModel):
    """The order was cancelled before it was charged: nothing to refund, and no charge will come.

    Payment's answer to `OrderCancelled` when the order was declined or never seen; an
    `OrderCreated` for it arriving later (a replay) charges nothing.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
