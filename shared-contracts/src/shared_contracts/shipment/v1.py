"""Version 1 of the shipping service's events (topic `shipments.events`, key order id)."""

from datetime import date
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ShipmentScheduled(BaseModel):
    """A confirmed order's shipment was scheduled: it leaves the warehouse by `ship_by`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    shipment_id: UUID = Field(description="The shipment.")
    ship_by: date = Field(description="The day the shipment leaves the warehouse at the latest.")
    scheduled_at: AwareDatetime = Field(description="When it was scheduled (UTC).")


class ShipmentCancelled(BaseModel):
    """A scheduled shipment was cancelled because its order was cancelled after confirmation."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    order_id: UUID = Field(description="The order.")
    shipment_id: UUID = Field(description="The shipment.")
    cancelled_at: AwareDatetime = Field(description="When it was cancelled (UTC).")
