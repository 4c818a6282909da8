"""Kafka topic names: one topic per producer, keyed by aggregate id."""

from enum import StrEnum


class Topic(StrEnum):
    """The topics of the saga. Each has a dead-letter twin, see `dlq`."""

    ORDER_EVENTS = "orders.events"
    PAYMENT_EVENTS = "payments.events"
    INVENTORY_EVENTS = "inventory.events"
    PRODUCT_EVENTS = "inventory.products"

    @property
    def dlq(self) -> str:
        """The dead-letter topic that receives this topic's poison messages."""
        return f"{self.value}.dlq"


ALL_TOPICS: tuple[str, ...] = tuple(name for t in Topic for name in (t.value, t.dlq))
"""Every topic the system uses, dead-letter topics included, for provisioning."""
