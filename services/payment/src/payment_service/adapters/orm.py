"""The payment service's tables (SQLAlchemy Core); the migrations create the same."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from chassis.db import new_metadata

metadata = new_metadata()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("balance_cents", sa.BigInteger, nullable=False),
    # Net money ever put in by PUT: balance = deposited - charged + refunded.
    sa.Column("deposited_cents", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
    sa.CheckConstraint("balance_cents >= 0", name="balance_not_negative"),
)
"""One row per customer: the balance that charges debit and refunds credit."""

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("payment_id", postgresql.UUID(as_uuid=True), primary_key=True),
    sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
    # The database itself guarantees that nobody is charged or refunded twice for one order.
    sa.UniqueConstraint("order_id", "kind", name="uq_payments_order_id_kind"),
    sa.CheckConstraint("kind IN ('charge', 'refund')", name="kind_known"),
    sa.CheckConstraint("amount_cents >= 0", name="amount_not_negative"),
)
"""Charges and refunds, at most one of each per order."""

cancelled_orders = sa.Table(
    "cancelled_orders",
    metadata,
    sa.Column("order_id", postgresql.UUID(as_uuid=True), primary_key=True),
    sa.Column(
        "cancelled_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    ),
)
"""Orders payment heard were cancelled: an OrderCreated for one of them charges nothing."""
