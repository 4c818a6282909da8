"""Routes of the shipping API: thin, each one calls a use case in `service_layer`.

`/health/live`, `/health/ready` and `/metrics` come from the chassis.
"""

import uuid

from fastapi import APIRouter, HTTPException

from chassis.api import UNAVAILABLE, error
from chassis.runtime import RuntimeDep
from shipping_service.api.schemas import ShipmentOut
from shipping_service.service_layer import handlers

router = APIRouter(prefix="/v1", tags=["shipping"], responses=UNAVAILABLE)


@router.get("/shipments/{order_id}", responses={404: error("The order has no shipment")})
async def get_shipment(order_id: uuid.UUID, runtime: RuntimeDep) -> ShipmentOut:
    """The order's shipment; 404 until the order is confirmed and shipping has heard of it."""
    async with runtime.sessions.begin() as session:
        shipment = await handlers.get_shipment(session, order_id)
    if shipment is None:
        raise HTTPException(status_code=404, detail=f"order {order_id} has no shipment")
    return ShipmentOut(
        shipment_id=shipment.shipment_id,
        order_id=shipment.order_id,
        status=shipment.status.value,
        ship_by=shipment.ship_by,
        scheduled_at=shipment.scheduled_at,
        cancelled_at=shipment.cancelled_at,
    )
