"""Use cases: what the shipping service does with each event it consumes.

A handler runs inside the consumer's transaction (`delivery.session`), the one that
also records the event in the inbox, so its effects happen once however often the
event is delivered. It reads top-down: load -> the domain decides -> save -> write the
events it causes with `delivery.publish(topic, key, event)` (the outbox; the relay
sends them). Nothing here talks to Kafka.
"""

import logging

from chassis.consumer import Delivery
from shared_contracts.order.v1 import OrderConfirmed

log = logging.getLogger(__name__)


async def on_order_confirmed(delivery: Delivery, event: OrderConfirmed) -> None:
    """An example to replace with the service's own rule: it only notes the event."""
    log.info("%s for %s", delivery.envelope.event_type, event.order_id)
