"""The shipping service's tables (SQLAlchemy Core); the migrations create the same."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from chassis.db import new_metadata

metadata = new_metadata()

shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("shipment_id", postgresql.UUID(as_uuid=True), primary_key=True),
    sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("ship_by", sa.Date, nullable=False),
    sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cancelled_at", sa.DateTime(timezone=True)),
    # At most one shipment per order, whatever the code does.
    sa.UniqueConstraint("order_id", name="uq_shipments_order_id"),
    sa.CheckConstraint("status IN ('SCHEDULED', 'CANCELLED')", name="status_known"),
)
"""One row per confirmed order: its shipment, scheduled or cancelled."""

cancelled_orders = sa.Table(
    "cancelled_orders",
    metadata,
    sa.Column("order_id", postgresql.UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "cancelled_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
)
"""Orders shipping heard were cancelled: a confirmation arriving later ships nothing."""
