"""Request and response bodies of the order API (not the domain, not the events)."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chassis.api import JSON_SCHEMA_INTEGER
from order_service.domain.model import Order, Product, Status

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
]
"""SKUs and customer ids: 1-64 letters, digits, '.', '_' or '-'."""


class OrderItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Identifier
    quantity: Annotated[int, Field(strict=True, ge=1, le=1_000_000), JSON_SCHEMA_INTEGER]


class PlaceOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Identifier
    items: Annotated[list[OrderItemIn], Field(min_length=1, max_length=100)]


class OrderItemOut(BaseModel):
    sku: str
    quantity: int
    unit_price_cents: int


class StepOut(BaseModel):
    """One step of the saga; details such as `reason` sit beside `step` and `at`."""

    model_config = ConfigDict(extra="allow")

    step: str
    at: datetime


class OrderOut(BaseModel):
    order_id: UUID
    customer_id: str
    status: str
    reason: str | None
    total_cents: int
    items: list[OrderItemOut]
    history: list[StepOut]
    awaiting: list[str] = Field(
        description="Services (`payment`, `inventory`) that have not yet answered the order's "
        "decision, which is sent again until they do; empty once the saga is over."
    )

    @classmethod
    def of(cls, order: Order) -> "OrderOut":
        return cls(
            order_id=order.order_id,
            customer_id=order.customer_id,
            status=order.status.value,
            reason=order.reason.value if order.reason else None,
            total_cents=order.total_cents,
            items=[OrderItemOut(**vars(line)) for line in order.lines],
            history=[StepOut(step=s.step, at=s.at, **s.detail) for s in order.timeline],
            awaiting=[who.value for who in order.awaiting],
        )


class OrderSummaryOut(BaseModel):
    """An order in a listing: as `GET /v1/orders/{order_id}` but without `history`."""

    order_id: UUID
    customer_id: str
    status: Status
    reason: str | None
    total_cents: int
    items: list[OrderItemOut]
    created_at: datetime

    @classmethod
    def of(cls, order: Order) -> "OrderSummaryOut":
        return cls(
            order_id=order.order_id,
            customer_id=order.customer_id,
            status=order.status,
            reason=order.reason.value if order.reason else None,
            total_cents=order.total_cents,
            items=[OrderItemOut(**vars(line)) for line in order.lines],
            created_at=order.created_at,
        )


class OrderPageOut(BaseModel):
    orders: list[OrderSummaryOut]
    next: UUID | None = Field(
        description="`order_id` of the last order returned, to pass as `after` for the next "
        "page; null when no order follows this page."
    )


class ProductOut(BaseModel):
    sku: str
    name: str
    unit_price_cents: int

    @classmethod
    def of(cls, product: Product) -> "ProductOut":
        return cls(**vars(product))
