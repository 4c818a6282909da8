"""Which payload model belongs to each `(event_type, event_version)`, and on which topic."""

from pydantic import BaseModel

from shared_contracts.inventory import v1 as inventory_v1
from shared_contracts.order import v1 as order_v1
from shared_contracts.payment import v1 as payment_v1
from shared_contracts.topics import Topic

EVENTS_BY_TOPIC: dict[Topic, tuple[type[BaseModel], ...]] = {
    Topic.ORDER_EVENTS: (order_v1.OrderCreated, order_v1.OrderConfirmed, order_v1.OrderCancelled),
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
}
"""Every published event model (version 1), by the topic it is published on."""

PAYLOADS: dict[tuple[str, int], type[BaseModel]] = {
    (model.__name__, 1): model for models in EVENTS_BY_TOPIC.values() for model in models
}
"""Payload model per `(event_type, event_version)`; the event type is the model's name."""
