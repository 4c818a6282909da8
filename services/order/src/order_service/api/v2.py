"""Version 2 of the order API: the buyer is `buyer_id` where v1 says `customer_id`.

The same orders, the same use cases, only the shapes differ, so each v2 operation is
its v1 twin with the field renamed on the way in and out. v1 keeps working unchanged
over the same data; its order operations are marked deprecated in the OpenAPI document
and, by `MarkV1Deprecated`, in every response. Clients move to v2 on their own
schedule, and v1 goes once nobody calls it.
"""

from datetime import datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chassis.api import UNAVAILABLE
from chassis.runtime import RuntimeDep
from order_service.api import routes
from order_service.api.schemas import (
    Identifier,
    OrderItemIn,
    OrderItemOut,
    PlaceOrderIn,
    StepOut,
)
from order_service.domain.model import Status

router = APIRouter(prefix="/v2", tags=["orders v2"], responses=UNAVAILABLE)

DEPRECATED_PREFIX = "/v1/orders"
"""The v1 operations that v2 replaces (the v1 catalog is not deprecated)."""

DEPRECATED_SINCE = 1795305600
"""2026-11-22T00:00:00Z, when v2 appeared, as a Unix time (RFC 9745)."""


DEPRECATION_HEADERS = [
    (b"deprecation", f"@{DEPRECATED_SINCE}".encode()),
    (b"link", b'</v2/orders>; rel="successor-version"'),
]
"""What every response of a deprecated v1 operation carries (RFC 9745, RFC 8288)."""


class MarkV1Deprecated:
    """ASGI middleware: the deprecation headers on every v1 order response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(DEPRECATED_PREFIX):
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message["headers"], *DEPRECATION_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_marked)


class PlaceOrderV2In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    buyer_id: Identifier
    items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=100)]


class OrderV2Out(BaseModel):
    order_id: UUID
    buyer_id: str
    status: Status
    reason: str | None
    total_cents: int
    items: list[OrderItemOut]
    history: list[StepOut]
    awaiting: list[str] = Field(
        description="Services (`payment`, `inventory`) that have not yet answered the order's "
        "decision, which is sent again until they do; empty once the saga is over."
    )


class OrderSummaryV2Out(BaseModel):
    """An order in a listing: as `GET /v2/orders/{order_id}` but without `history`."""

    order_id: UUID
    buyer_id: str
    status: Status
    reason: str | None
    total_cents: int
    items: list[OrderItemOut]
    created_at: datetime


class OrderPageV2Out(BaseModel):
    orders: list[OrderSummaryV2Out]
    next: UUID | None = Field(
        description="`order_id` of the last order returned, to pass as `after` for the next "
        "page; null when no order follows this page."
    )


Out = TypeVar("Out", bound=BaseModel)


def _renamed(data: Any) -> Any:
    """`data` (v1, as JSON) with every `customer_id` key renamed `buyer_id`."""
    if isinstance(data, dict):
        return {("buyer_id" if k == "customer_id" else k): _renamed(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_renamed(item) for item in data]
    return data


def _v2(v1: BaseModel, model: type[Out]) -> Out:
    return model.model_validate(_renamed(v1.model_dump(mode="json")))


@router.post("/orders", status_code=status.HTTP_202_ACCEPTED, responses=routes.PLACE_RESPONSES)
async def place_order(
    body: PlaceOrderV2In,
    intake: routes.IntakeDep,
    admission: routes.AdmissionDep,
    idempotency_key: routes.IdempotencyKey = None,
) -> OrderV2Out:
    """Place an order. It is PENDING until payment and inventory have answered.

    Prices come from the local catalog replica; unknown SKUs are refused with 422.
    Repeating a request with the same `Idempotency-Key` returns the same order; the
    same key with a different body is refused with 409. While too many orders are
    still pending, new ones are refused with 503 and `Retry-After`.
    """
    v1 = PlaceOrderIn(customer_id=body.buyer_id, items=body.items)
    return _v2(await routes.place_order(v1, intake, admission, idempotency_key), OrderV2Out)


@router.get("/orders", responses=routes.LIST_RESPONSES)
async def list_orders(
    runtime: RuntimeDep,
    order_status: Annotated[
        Status | None, Query(alias="status", description="Only orders in this status.")
    ] = None,
    buyer_id: Annotated[Identifier | None, Query(description="Only this buyer's orders.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many orders.")] = 100,
    after: Annotated[
        UUID | None,
        Query(
            description="Cursor: the `next` of the previous page; start at the beginning without it."
        ),
    ] = None,
) -> OrderPageV2Out:
    """List orders in creation order, a page at a time, as `GET /v1/orders` does."""
    page = await routes.list_orders(runtime, order_status, buyer_id, limit, after)
    return _v2(page, OrderPageV2Out)


@router.get("/orders/{order_id}", responses=routes.GET_RESPONSES)
async def get_order(order_id: UUID, runtime: RuntimeDep) -> OrderV2Out:
    """The order with its status, reason and saga history."""
    return _v2(await routes.get_order(order_id, runtime), OrderV2Out)


@router.post(
    "/orders/{order_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses=routes.CANCEL_RESPONSES,
)
async def cancel_order(order_id: UUID, runtime: RuntimeDep) -> OrderV2Out:
    """Cancel a PENDING or CONFIRMED order; refund and restock follow. 409 if already cancelled."""
    return _v2(await routes.cancel_order(order_id, runtime), OrderV2Out)
