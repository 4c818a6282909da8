"""The inventory service's FastAPI app: routes, consumer handlers, chassis lifespan."""

from fastapi import FastAPI

from chassis.app import create_service_app
from inventory_service.api import routes
from inventory_service.service_layer import handlers
from inventory_service.settings import Settings
from shared_contracts import Topic


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app: `/v1/products`, health, metrics; consumes `orders.events` as group `inventory`."""
    return create_service_app(
        name="inventory",
        settings=settings or Settings(),
        routers=[routes.router],
        handlers={
            "OrderCreated": handlers.on_order_created,
            "OrderConfirmed": handlers.on_order_confirmed,
            "OrderCancelled": handlers.on_order_cancelled,
        },
        topics=[Topic.ORDER_EVENTS],
    )
