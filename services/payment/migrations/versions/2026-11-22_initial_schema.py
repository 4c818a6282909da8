"""Accounts and payments (at most one charge and one refund per order), outbox and inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from chassis.tables import create_messaging_tables, drop_messaging_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("balance_cents", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("balance_cents >= 0", name="ck_accounts_balance_not_negative"),
        sa.PrimaryKeyConstraint("customer_id", name="pk_accounts"),
    )
    op.create_table(
        "payments",
        sa.Column("payment_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("kind IN ('charge', 'refund')", name="ck_payments_kind_known"),
        sa.CheckConstraint("amount_cents >= 0", name="ck_payments_amount_not_negative"),
        sa.PrimaryKeyConstraint("payment_id", name="pk_payments"),
        # Nobody is charged or refunded twice for one order, whatever the code does.
        sa.UniqueConstraint("order_id", "kind", name="uq_payments_order_id_kind"),
    )
    op.create_index("ix_payments_customer_id", "payments", ["customer_id"])
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
    op.drop_index("ix_payments_customer_id", table_name="payments")
    op.drop_table("payments")
    op.drop_table("accounts")
