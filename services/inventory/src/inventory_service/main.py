"""The inventory service's FastAPI app: routes, consumer handlers, chassis lifespan."""

from fastapi import FastAPI

from chassis.app import create_service_app
from chassis.consumer import Handler
from inventory_service.api import routes
from inventory_service.service_layer import handlers
from inventory_service.settings import Settings
from shared_contracts import Topic

HANDLERS: dict[str, Handler] = {
    "OrderCreated": handlers.on_order_created,
    "OrderConfirmed": handlers.on_order_confirmed,
    "OrderCancelled": handlers.on_order_cancelled,
}
"""The events inventory applies; `contracts/consumes.yaml` declares what they read of each."""

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
    )
