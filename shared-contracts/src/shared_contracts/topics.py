"""Kafka topic names: one topic per producer, keyed by aggregate id."""

from enum import StrEnum


class Topic(StrEnum):
    """The topics of the saga. Each has a dead-letter twin, see `dlq`."""

    ORDER_EVENTS = "orders.events"
    PAYMENT_EVENTS = "payments.events"
    INVENTORY_EVENTS = "inventory.events"
    PRODUCT_EVENTS = "inventory.products"
    SHIPMENT_EVENTS = "shipments.events"

    @property
    def dlq(self) -> str:
        """The dead-letter topic that receives this topic's poison messages."""
        return f"{self.value}.dlq"


PRODUCERS: dict[Topic, str] = {
    Topic.ORDER_EVENTS: "order",
    Topic.PAYMENT_EVENTS: "payment",
    Topic.INVENTORY_EVENTS: "inventory",
    Topic.PRODUCT_EVENTS: "inventory",
    Topic.SHIPMENT_EVENTS: "shipping",
}
"""The one service that publishes on each topic (the `producer` of its envelopes)."""

ALL_TOPICS: tuple[str, ...] = tuple(name for t in Topic for name in (t.value, t.dlq))
"""Every topic the system uses, dead-letter topics included, for provisioning."""
