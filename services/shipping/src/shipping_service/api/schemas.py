"""HTTP response bodies of the shipping API."""

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class ShipmentOut(BaseModel):
    """The shipment of an order."""

    shipment_id: uuid.UUID = Field(description="The shipment.")
    order_id: uuid.UUID = Field(description="The order it ships.")
    status: Literal["SCHEDULED", "CANCELLED"] = Field(description="Scheduled, or cancelled.")
    ship_by: date = Field(description="The day it leaves the warehouse at the latest.")
    scheduled_at: datetime = Field(description="When it was scheduled (UTC).")
    cancelled_at: datetime | None = Field(description="When it was cancelled (UTC), or null.")
