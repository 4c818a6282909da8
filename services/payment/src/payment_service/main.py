"""Build the payment service's FastAPI app on the chassis."""

from fastapi import FastAPI

from chassis.app import create_service_app
from chassis.consumer import Handlers
from payment_service.api import routes
from payment_service.service_layer import handlers
from payment_service.settings import Settings
from shared_contracts import Topic
from shared_contracts.order import v1 as order_v1
from shared_contracts.order import v2 as order_v2

HANDLERS: Handlers = {
    order_v2.OrderCreated: handlers.on_order_created,
    order_v1.OrderCancelled: handlers.on_order_cancelled,
}
"""The events payment applies; OrderConfirmed needs nothing from payment, so it is skipped.

Payment reads OrderCreated v2 only; the v1 copies the order service still publishes
for others are skipped (see `chassis.consumer.Dispatcher`).

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
        prefetch=handlers.lock_charged_accounts,
    )
