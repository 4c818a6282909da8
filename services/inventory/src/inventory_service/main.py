"""The inventory service's FastAPI app: routes, consumer handlers, chassis lifespan."""

from fastapi import FastAPI

from chassis.app import create_service_app
from chassis.consumer import Handlers
from inventory_service.api import routes
from inventory_service.service_layer import handlers
from inventory_service.settings import Settings
from shared_contracts import Topic
from shared_contracts.order import v1 as order_v1

HANDLERS: Handlers = {
    order_v1.OrderCreated: handlers.on_order_created,
    order_v1.OrderConfirmed: handlers.on_order_confirmed,
    order_v1.OrderCancelled: handlers.on_order_cancelled,
}
"""The events inventory applies; `contracts/consumes.yaml` declares what they read of each.

Inventory still reads OrderCreated v1: it moves to v2 on its own schedule, and until
then the order service publishes both (docs/evolving-contracts.md).
"""

TOPICS = [Topic.ORDER_EVENTS]
"""The topics inventory's consumer group subscribes to."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app: `/v1/products`, health, metrics; consumes `orders.events` as group `inventory`."""
    return create_service_app(
        name="inventory",
        settings=settings or Settings(),
        routers=[routes.router],
        handlers=HANDLERS,
        topics=TOPICS,
        prefetch=handlers.lock_ordered_stock,
    )
