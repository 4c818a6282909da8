"""Which payload model belongs to each `(event_type, event_version)`, and on which topic.

A model's event type is its class name and its version is its module's (`order/v2.py`
holds version 2), so `shared_contracts.<producer>.v<N>` is the whole versioning scheme.
"""

from pydantic import BaseModel

from shared_contracts.inventory import v1 as inventory_v1
from shared_contracts.order import v1 as order_v1
from shared_contracts.order import v2 as order_v2
from shared_contracts.payment import v1 as payment_v1
from shared_contracts.shipment import v1 as shipment_v1
from shared_contracts.topics import Topic

EVENTS_BY_TOPIC: dict[Topic, tuple[type[BaseModel], ...]] = {
    Topic.ORDER_EVENTS: (
        order_v1.OrderCreated,
        order_v2.OrderCreated,
        order_v1.OrderConfirmed,
        order_v1.OrderCancelled,
    ),
    Topic.PAYMENT_EVENTS: (
        payment_v1.PaymentSucceeded,
        payment_v1.PaymentFailed,
        payment_v1.PaymentRefunded,
        payment_v1.PaymentVoided,
    ),
    Topic.INVENTORY_EVENTS: (
        inventory_v1.StockReserved,
        inventory_v1.StockReservationFailed,
        inventory_v1.StockReleased,
        inventory_v1.StockSold,
    ),
    Topic.PRODUCT_EVENTS: (inventory_v1.ProductUpdated,),
    Topic.SHIPMENT_EVENTS: (shipment_v1.ShipmentScheduled, shipment_v1.ShipmentCancelled),
}
"""Every published event model, every version, by the topic it is published on."""


def event_key(model: type[BaseModel]) -> tuple[str, int]:
    """`(event_type, event_version)` of a payload model: its class name and module's version."""
    return model.__name__, int(model.__module__.rsplit(".v", 1)[1])


PAYLOADS: dict[tuple[str, int], type[BaseModel]] = {
    event_key(model): model for models in EVENTS_BY_TOPIC.values() for model in models
}
"""Payload model per `(event_type, event_version)`."""
