"""Build the shipping service's FastAPI app on the chassis."""

from fastapi import FastAPI

from chassis.app import create_service_app
from chassis.consumer import Handlers
from shared_contracts import Topic
from shared_contracts.order.v1 import OrderCancelled, OrderConfirmed
from shipping_service.api import routes
from shipping_service.service_layer import handlers
from shipping_service.settings import Settings

HANDLERS: Handlers = {
    OrderConfirmed: handlers.on_order_confirmed,
    OrderCancelled: handlers.on_order_cancelled,
}
"""The events shipping applies; OrderCreated is skipped: only a confirmed order ships.

`contracts/consumes.yaml` declares what these handlers read of each event.
"""

TOPICS = [Topic("orders.events")]
"""The topics the shipping consumer group subscribes to."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The shipping app: its API, and a consumer of `orders.events` in group `shipping`."""
    return create_service_app(
        name="shipping",
        settings=settings or Settings(),
        routers=[routes.router],
        handlers=HANDLERS,
        topics=TOPICS,
    )
