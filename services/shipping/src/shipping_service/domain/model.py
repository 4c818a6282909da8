"""Shipments and the rules that schedule and cancel them.

Pure Python: no I/O, no framework, no `shared_contracts`. Each rule gets what it needs
and returns the decision, so the service layer only loads, asks and saves.
"""

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum


class ShippingError(Exception):
    """Base class of the shipping rules' errors."""


class ShipmentStatus(StrEnum):
    """Where a shipment stands."""

    SCHEDULED = "SCHEDULED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Shipment:
    """The shipment of one confirmed order: at most one per order."""

    order_id: uuid.UUID
    status: ShipmentStatus
    ship_by: date
    scheduled_at: datetime
    cancelled_at: datetime | None = None
    shipment_id: uuid.UUID = field(default_factory=uuid.uuid4)


SATURDAY = 5
"""`date.weekday()` of Saturday: the warehouse ships Monday to Friday."""


def ship_by(now: datetime) -> date:
    """The next working day after `now`: the latest day a shipment scheduled now leaves."""
    day = now.date() + timedelta(days=1)
    while day.weekday() >= SATURDAY:
        day += timedelta(days=1)
    return day


def schedule(
    order_id: uuid.UUID, existing: Shipment | None, cancelled: bool, now: datetime
) -> Shipment | None:
    """The shipment to schedule for a confirmed order, or None when there is nothing to do.

    Nothing when the order already has a shipment (a decision sent again is answered by
    the first one) or was cancelled before its confirmation got here (a replay).
    """
    if existing is not None or cancelled:
        return None
    return Shipment(order_id, ShipmentStatus.SCHEDULED, ship_by(now), scheduled_at=now)


def cancel(existing: Shipment | None, now: datetime) -> Shipment | None:
    """The cancelled shipment of a cancelled order, or None when none is scheduled.

    None when the order never had a shipment (cancelled before confirmation) or its
    shipment is already cancelled: compensation is idempotent.
    """
    if existing is None or existing.status is not ShipmentStatus.SCHEDULED:
        return None
    return replace(existing, status=ShipmentStatus.CANCELLED, cancelled_at=now)
