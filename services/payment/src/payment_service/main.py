"""Build the payment service's FastAPI app on the chassis."""

from fastapi import FastAPI

from chassis.app import create_service_app
from chassis.consumer import Handler
from payment_service.api import routes
from payment_service.service_layer import handlers
from payment_service.settings import Settings
from shared_contracts import Topic
from shared_contracts.order.v1 import OrderCancelled, OrderCreated

HANDLERS: dict[str, Handler] = {
    OrderCreated.__name__: handlers.on_order_created,
    OrderCancelled.__name__: handlers.on_order_cancelled,
}
"""The events payment applies; OrderConfirmed needs nothing from payment, so it is skipped.

`contracts/consumes.yaml` declares what these handlers read of each event.
"""

TOPICS = [Topic.ORDER_EVENTS]
"""The topics payment's consumer group subscribes to."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The payment app: its API, and a consumer of `orders.events` in group `payment`."""
    return create_service_app(
        name="payment",
        settings=settings or Settings(),
        routers=[routes.router],
        handlers=HANDLERS,
        topics=TOPICS,
    )
