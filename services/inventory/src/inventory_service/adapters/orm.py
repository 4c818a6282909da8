"""The inventory's tables (SQLAlchemy Core); the messaging tables come from the chassis."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from chassis.db import new_metadata

metadata = new_metadata()

products = sa.Table(
    "products",
    metadata,
    sa.Column("sku", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("unit_price_cents", sa.BigInteger, nullable=False),
    sa.Column("available", sa.BigInteger, nullable=False),
    sa.Column("reserved", sa.BigInteger, nullable=False),
    sa.Column("sold", sa.BigInteger, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # Net units ever put in by PUT: available + reserved + sold always equals it.
    sa.Column("received", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
    sa.CheckConstraint("unit_price_cents >= 0", name="unit_price_cents_non_negative"),
    sa.CheckConstraint("available >= 0", name="available_non_negative"),
    sa.CheckConstraint("reserved >= 0", name="reserved_non_negative"),
    sa.CheckConstraint("sold >= 0", name="sold_non_negative"),
)
"""One row per SKU: catalog data, the three stock buckets and the units ever received."""

reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("order_id", postgresql.UUID(as_uuid=True), primary_key=True),
    sa.Column("sku", sa.Text, sa.ForeignKey("products.sku"), primary_key=True),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
    sa.CheckConstraint("quantity > 0", name="quantity_positive"),
    sa.CheckConstraint("status IN ('reserved', 'sold', 'released')", name="status_valid"),
)
"""Units of one SKU held, sold or released for one order."""

cancelled_orders = sa.Table(
    "cancelled_orders",
    metadata,
    sa.Column("order_id", postgresql.UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "cancelled_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
)
"""Orders inventory heard were cancelled: an OrderCreated for one of them reserves nothing."""
