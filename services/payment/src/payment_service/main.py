"""Build the payment service's FastAPI app on the chassis."""

from fastapi import FastAPI

from chassis.app import create_service_app
from payment_service.api import routes
from payment_service.service_layer import handlers
from payment_service.settings import Settings
from shared_contracts import Topic
from shared_contracts.order.v1 import OrderCancelled, OrderCreated


def create_app(settings: Settings | None = None) -> FastAPI:
    """The payment app: its API, and a consumer of `orders.events` in group `payment`.

    OrderConfirmed needs nothing from payment, so it has no handler and is skipped.
    """
    return create_service_app(
        name="payment",
        settings=settings or Settings(),
        routers=[routes.router],
        handlers={
            OrderCreated.__name__: handlers.on_order_created,
            OrderCancelled.__name__: handlers.on_order_cancelled,
        },
        topics=[Topic.ORDER_EVENTS],
    )
