"""The order service's tables (SQLAlchemy Core); Alembic migrations create them."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from chassis.db import new_metadata

metadata = new_metadata()

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", postgresql.UUID(as_uuid=True), primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("payment", sa.Text),
    sa.Column("stock", sa.Text),
    sa.Column("total_cents", sa.BigInteger, nullable=False),
    sa.Column("idempotency_key", sa.Text, unique=True),
    sa.Column("request_fingerprint", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # When the decision still awaiting answers was last sent; NULL when none is awaited.
    sa.Column("awaiting_since", sa.DateTime(timezone=True)),
    # How often that decision was sent again: the wait before the next doubles each time.
    sa.Column("resends", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Index(
        "ix_orders_pending_created_at", "created_at", postgresql_where=sa.text("status = 'PENDING'")
    ),
    sa.Index(
        "ix_orders_awaiting_since",
        "awaiting_since",
        postgresql_where=sa.text("awaiting_since IS NOT NULL"),
    ),
    # GET /v1/orders walks orders in creation order (keyset pagination).
    sa.Index("ix_orders_created_at_order_id", "created_at", "order_id"),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", sa.ForeignKey("orders.order_id"), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("sku", sa.Text, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price_cents", sa.BigInteger, nullable=False),
)

order_history = sa.Table(
    "order_history",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("order_id", sa.ForeignKey("orders.order_id"), nullable=False, index=True),
    sa.Column("step", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("detail", postgresql.JSONB, nullable=False),
)

catalog = sa.Table(
    "catalog",
    metadata,
    sa.Column("sku", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("unit_price_cents", sa.BigInteger, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
"""Read-only replica of inventory's products, fed by `inventory.products` events."""
