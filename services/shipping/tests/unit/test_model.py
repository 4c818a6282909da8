import uuid
from datetime import UTC, date, datetime

import pytest

from shipping_service.domain.model import Shipment, ShipmentStatus, cancel, schedule, ship_by

MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
FRIDAY = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)
SATURDAY = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "day"),
    [(MONDAY, date(2026, 12, 1)), (FRIDAY, date(2026, 12, 7)), (SATURDAY, date(2026, 12, 7))],
)
def test_a_shipment_leaves_by_the_next_working_day(now, day):
    assert ship_by(now) == day


def test_a_confirmed_order_gets_a_scheduled_shipment():
    order_id = uuid.uuid4()

    shipment = schedule(order_id, existing=None, cancelled=False, now=MONDAY)

    assert shipment is not None
    assert (shipment.order_id, shipment.status) == (order_id, ShipmentStatus.SCHEDULED)
    assert (shipment.ship_by, shipment.scheduled_at, shipment.cancelled_at) == (
        date(2026, 12, 1),
        MONDAY,
        None,
    )


def test_a_confirmation_sent_again_schedules_nothing_more():
    first = schedule(uuid.uuid4(), existing=None, cancelled=False, now=MONDAY)
    assert first is not None
    assert schedule(first.order_id, existing=first, cancelled=False, now=FRIDAY) is None


def test_an_order_cancelled_before_its_confirmation_arrived_is_not_shipped():
    assert schedule(uuid.uuid4(), existing=None, cancelled=True, now=MONDAY) is None


def test_cancelling_a_scheduled_shipment_keeps_its_id_and_records_when():
    scheduled = Shipment(uuid.uuid4(), ShipmentStatus.SCHEDULED, date(2026, 12, 1), MONDAY)

    cancelled = cancel(scheduled, now=FRIDAY)

    assert cancelled is not None
    assert (cancelled.shipment_id, cancelled.status, cancelled.cancelled_at) == (
        scheduled.shipment_id,
        ShipmentStatus.CANCELLED,
        FRIDAY,
    )


def test_cancelling_nothing_or_a_cancelled_shipment_does_nothing():
    scheduled = Shipment(uuid.uuid4(), ShipmentStatus.SCHEDULED, date(2026, 12, 1), MONDAY)
    cancelled = cancel(scheduled, now=FRIDAY)

    assert cancel(None, now=FRIDAY) is None
    assert cancel(cancelled, now=SATURDAY) is None
