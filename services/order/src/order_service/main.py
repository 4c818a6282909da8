"""Assemble the order service: routes, event handlers, the sweep of overdue orders."""

import asyncio
import logging
from datetime import timedelta

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse, Response

from chassis.app import create_service_app
from chassis.consumer import Handlers
from chassis.overload import retry_later
from chassis.runtime import Runtime
from order_service.api import routes, v2
from order_service.domain.model import AlreadyCancelled, UnknownSkus
from order_service.service_layer import handlers
from order_service.service_layer.admission import Admission
from order_service.service_layer.intake import Intake, ShuttingDown
from order_service.settings import Settings
from shared_contracts import Topic
from shared_contracts.inventory import v1 as inventory
from shared_contracts.payment import v1 as payment

log = logging.getLogger(__name__)

HANDLERS: Handlers = {
    payment.PaymentSucceeded: handlers.on_payment_succeeded,
    payment.PaymentFailed: handlers.on_payment_failed,
    payment.PaymentRefunded: handlers.on_payment_refunded,
    payment.PaymentVoided: handlers.on_payment_voided,
    inventory.StockReserved: handlers.on_stock_reserved,
    inventory.StockReservationFailed: handlers.on_stock_reservation_failed,
    inventory.StockReleased: handlers.on_stock_released,
    inventory.StockSold: handlers.on_stock_sold,
    inventory.ProductUpdated: handlers.on_product_updated,
}
"""The events the order service applies; `contracts/consumes.yaml` declares what they read."""

TOPICS = [Topic.PAYMENT_EVENTS, Topic.INVENTORY_EVENTS, Topic.PRODUCT_EVENTS]
"""The topics the order service's consumer group subscribes to."""

ERROR_STATUS: dict[type[Exception], int] = {
    UnknownSkus: status.HTTP_422_UNPROCESSABLE_CONTENT,
    handlers.OrderNotFound: status.HTTP_404_NOT_FOUND,
    AlreadyCancelled: status.HTTP_409_CONFLICT,
    handlers.IdempotencyKeyReused: status.HTTP_409_CONFLICT,
    handlers.UnknownCursor: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The order service: HTTP API, consumer of payment/inventory results, overdue sweep."""
    settings = settings or Settings()
    timeout = timedelta(seconds=settings.saga_timeout_seconds)

    async def sweep_overdue(runtime: Runtime) -> None:
        interval = min(1.0, settings.saga_timeout_seconds / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                await handlers.chase_overdue_orders(runtime.sessions, runtime.outbox, timeout)
            except Exception:
                log.warning("overdue-order sweep failed; next sweep retries", exc_info=True)

    admission, intake = Admission(settings.max_pending_orders), Intake()
    app = create_service_app(
        "order",
        settings,
        routers=[routes.router, v2.router],
        handlers=HANDLERS,
        topics=TOPICS,
        background=[sweep_overdue, admission.watch, intake.run],
        prefetch=handlers.lock_answered_orders,
    )
    app.state.admission, app.state.intake = admission, intake

    async def domain_error(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=ERROR_STATUS[type(exc)])

    async def shutting_down(_request: Request, exc: Exception) -> Response:
        return retry_later(str(exc))

    for error in ERROR_STATUS:
        app.add_exception_handler(error, domain_error)
    app.add_exception_handler(ShuttingDown, shutting_down)
    app.add_middleware(v2.MarkV1Deprecated)
    return app
