"""The order API, version 1: place, read and cancel orders; read the catalog replica.

The order operations are deprecated in favour of version 2 (`api/v2.py`), which
renames `customer_id` to `buyer_id`; they keep working unchanged.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, status

from chassis import telemetry
from chassis.api import MALFORMED_BODY, UNAVAILABLE, Responses, error, unprocessable
from chassis.runtime import RuntimeDep
from order_service.adapters import repository
from order_service.api.schemas import (
    Identifier,
    OrderOut,
    OrderPageOut,
    OrderSummaryOut,
    PlaceOrderIn,
    ProductOut,
)
from order_service.domain.model import Status
from order_service.service_layer import handlers
from order_service.service_layer.admission import Admission
from order_service.service_layer.intake import Intake

router = APIRouter(prefix="/v1", tags=["orders"], responses=UNAVAILABLE)

# The refusals of each order operation, shared with its v2 twin (`api/v2.py`).
PLACE_RESPONSES: Responses = {
    **MALFORMED_BODY,
    409: error("The `Idempotency-Key` was used before with another body"),
    **unprocessable("an item's SKU is not in the catalog"),
}
LIST_RESPONSES = unprocessable("`after` is not the id of an order")
GET_RESPONSES: Responses = {404: error("Unknown order")}
CANCEL_RESPONSES: Responses = {**GET_RESPONSES, 409: error("The order is already cancelled")}


async def get_admission(request: Request) -> Admission:
    """FastAPI dependency: the order service's admission control (`create_app` sets it).

    `async` so that FastAPI calls it on the event loop, not in a worker thread.
    """
    admission: Admission = request.app.state.admission
    return admission


AdmissionDep = Annotated[Admission, Depends(get_admission)]


async def get_intake(request: Request) -> Intake:
    """FastAPI dependency: the order service's intake (`create_app` sets it), `async` as above."""
    intake: Intake = request.app.state.intake
    return intake


IntakeDep = Annotated[Intake, Depends(get_intake)]

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
]


@router.post(
    "/orders", status_code=status.HTTP_202_ACCEPTED, deprecated=True, responses=PLACE_RESPONSES
)
async def place_order(
    body: PlaceOrderIn,
    intake: IntakeDep,
    admission: AdmissionDep,
    idempotency_key: IdempotencyKey = None,
) -> OrderOut:
    """Place an order. It is PENDING until payment and inventory have answered.

    Prices come from the local catalog replica; unknown SKUs are refused with 422.
    Repeating a request with the same `Idempotency-Key` returns the same order; the
    same key with a different body is refused with 409. While too many orders are
    still pending, new ones are refused with 503 and `Retry-After`.
    """
    admission.check()
    items = [(item.sku, item.quantity) for item in body.items]
    placement = handlers.Placement(
        body.customer_id, items, idempotency_key, trace=telemetry.current_context()
    )
    order = await intake.place(placement)
    return OrderOut.of(order)


@router.get("/orders", deprecated=True, responses=LIST_RESPONSES)
async def list_orders(
    runtime: RuntimeDep,
    order_status: Annotated[
        Status | None, Query(alias="status", description="Only orders in this status.")
    ] = None,
    customer_id: Annotated[
        Identifier | None, Query(description="Only this customer's orders.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many orders.")] = 100,
    after: Annotated[
        UUID | None,
        Query(
            description="Cursor: the `next` of the previous page; start at the beginning without it."
        ),
    ] = None,
) -> OrderPageOut:
    """List orders in creation order (`created_at`, then `order_id`), a page at a time.

    Read-only. Each order is as in `GET /v1/orders/{order_id}` plus `created_at`, without
    `history`. To read all orders, start without `after` and pass each page's `next` as
    `after` until `next` is null. The filters narrow the orders listed; the cursor is any
    order's id (it need not match them). An unknown `after` is refused with 422.

    An order placed while the walk is under way may be missed when its `created_at`
    falls before the cursor (clocks, commit order): restart the walk to see all of them.
    """
    orders, next_cursor = await handlers.list_orders(
        runtime.sessions, limit=limit, after=after, status=order_status, customer_id=customer_id
    )
    return OrderPageOut(orders=[OrderSummaryOut.of(o) for o in orders], next=next_cursor)


@router.get("/orders/{order_id}", deprecated=True, responses=GET_RESPONSES)
async def get_order(order_id: UUID, runtime: RuntimeDep) -> OrderOut:
    """The order with its status, reason and saga history."""
    return OrderOut.of(await handlers.get_order(runtime.sessions, order_id))


@router.post(
    "/orders/{order_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    deprecated=True,
    responses=CANCEL_RESPONSES,
)
async def cancel_order(order_id: UUID, runtime: RuntimeDep) -> OrderOut:
    """Cancel a PENDING or CONFIRMED order; refund and restock follow. 409 if already cancelled."""
    return OrderOut.of(await handlers.cancel_order(runtime.sessions, runtime.outbox, order_id))


@router.get(
    "/catalog/{sku}", tags=["catalog"], responses={404: error("Not in the catalog replica (yet)")}
)
async def get_catalog_product(
    sku: Annotated[Identifier, Path()], runtime: RuntimeDep
) -> ProductOut:
    """This service's replica of a product; 404 until the replica has received it."""
    async with runtime.sessions.begin() as session:
        product = (await repository.products(session, [sku])).get(sku)
    if product is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"product {sku} is not in the catalog")
    return ProductOut.of(product)
