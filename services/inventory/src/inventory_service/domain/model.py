"""Products, stock levels and reservations: the inventory's business rules, pure Python.

A product's units are always in exactly one of three buckets: `available` (on hand,
free), `reserved` (held for an order in flight) or `sold`. Reserving, selling and
releasing only move units between buckets, so their sum changes only when a product
is (re)stocked. `received` is that sum as the catalog put it in: the net units ever
stocked, so `available + reserved + sold == received` holds at all times.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID


class InventoryError(Exception):
    """A business rule was broken."""


class InvalidQuantity(InventoryError):
    """A quantity that is not a positive number of units."""


class InsufficientStock(InventoryError):
    """More units were asked for than the bucket holds."""


class InvalidProduct(InventoryError):
    """Catalog data that is not allowed (empty name, negative price or stock)."""


class ReservationStatus(StrEnum):
    """Where a reservation's units are now."""

    RESERVED = "reserved"
    SOLD = "sold"
    RELEASED = "released"


@dataclass
class Product:
    """A SKU with its catalog data and stock buckets.

    `version` counts catalog changes; a `Product` with version 0 was never stocked.
    `received` is the net number of units ever put in by restocking; only
    `replace_catalog` changes it, so `available + reserved + sold == received`.
    """

    sku: str
    name: str = ""
    unit_price_cents: int = 0
    available: int = 0
    reserved: int = 0
    sold: int = 0
    version: int = 0
    received: int = 0

    def replace_catalog(self, name: str, unit_price_cents: int, stock: int) -> None:
        """Set name, price and units on hand (held and sold units stay as they are).

        The change in units on hand (`stock - available`, which may be negative) is
        added to `received`.
        """
        if not name:
            raise InvalidProduct("name must not be empty")
        if unit_price_cents < 0 or stock < 0:
            raise InvalidProduct("price and stock must not be negative")
        self.name = name
        self.unit_price_cents = unit_price_cents
        self.received += stock - self.available
        self.available = stock
        self.version += 1

    def can_reserve(self, quantity: int) -> bool:
        """True if `quantity` units are on hand."""
        return quantity <= self.available

    def reserve(self, quantity: int) -> None:
        """Hold `quantity` units on hand for an order."""
        _check_positive(quantity)
        if not self.can_reserve(quantity):
            raise InsufficientStock(f"{self.sku}: {quantity} wanted, {self.available} available")
        self.available -= quantity
        self.reserved += quantity

    def sell(self, quantity: int) -> None:
        """Turn `quantity` held units into sold ones."""
        _check_positive(quantity)
        if quantity > self.reserved:
            raise InsufficientStock(f"{self.sku}: cannot sell {quantity}, {self.reserved} held")
        self.reserved -= quantity
        self.sold += quantity

    def release(self, quantity: int) -> None:
        """Put `quantity` held units back on hand."""
        _check_positive(quantity)
        if quantity > self.reserved:
            raise InsufficientStock(f"{self.sku}: cannot release {quantity}, {self.reserved} held")
        self.reserved -= quantity
        self.available += quantity

    def take_back(self, quantity: int) -> None:
        """Put `quantity` sold units back on hand (a confirmed order was cancelled)."""
        _check_positive(quantity)
        if quantity > self.sold:
            raise InsufficientStock(f"{self.sku}: cannot take back {quantity}, {self.sold} sold")
        self.sold -= quantity
        self.available += quantity


def _check_positive(quantity: int) -> None:
    if quantity < 1:
        raise InvalidQuantity(f"quantity must be at least 1, got {quantity}")


@dataclass
class Reservation:
    """Units of one SKU held, sold or released for one order."""

    order_id: UUID
    sku: str
    quantity: int
    status: ReservationStatus = ReservationStatus.RESERVED


@dataclass(frozen=True)
class Reserved:
    """Every line of the order was reserved."""

    reservations: list[Reservation]


@dataclass(frozen=True)
class Rejected:
    """Some SKUs were unknown or short, so nothing was reserved."""

    short_skus: list[str] = field(default_factory=list)


def total_quantities(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Units wanted per SKU, in SKU order; an order may list a SKU on several lines."""
    totals: dict[str, int] = {}
    for sku, quantity in lines:
        _check_positive(quantity)
        totals[sku] = totals.get(sku, 0) + quantity
    return dict(sorted(totals.items()))


def reserve_order(
    order_id: UUID, wanted: Mapping[str, int], products: Mapping[str, Product]
) -> Reserved | Rejected:
    """Reserve every SKU of `wanted` from `products`, or nothing if any is unknown or short."""
    short = sorted(
        sku
        for sku, quantity in wanted.items()
        if sku not in products or not products[sku].can_reserve(quantity)
    )
    if short:
        return Rejected(short)
    for sku, quantity in wanted.items():
        products[sku].reserve(quantity)
    return Reserved([Reservation(order_id, sku, q) for sku, q in sorted(wanted.items())])


def sell_order(
    reservations: Sequence[Reservation], products: Mapping[str, Product]
) -> list[Reservation]:
    """Sell the held lines of an order; return the reservations that changed."""
    held = [r for r in reservations if r.status is ReservationStatus.RESERVED]
    for reservation in held:
        products[reservation.sku].sell(reservation.quantity)
        reservation.status = ReservationStatus.SOLD
    return held


def release_order(
    reservations: Sequence[Reservation], products: Mapping[str, Product]
) -> list[Reservation]:
    """Put an order's held or sold units back on hand; return the reservations released.

    Lines already released are skipped, so releasing twice changes nothing.
    """
    active = [r for r in reservations if r.status is not ReservationStatus.RELEASED]
    for reservation in active:
        product = products[reservation.sku]
        if reservation.status is ReservationStatus.RESERVED:
            product.release(reservation.quantity)
        else:
            product.take_back(reservation.quantity)
        reservation.status = ReservationStatus.RELEASED
    return active
