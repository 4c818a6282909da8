"""Index orders by (created_at, order_id) for the keyset-paginated listing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_orders_created_at_order_id", "orders", ["created_at", "order_id"])


def downgrade() -> None:
    op.drop_index("ix_orders_created_at_order_id", table_name="orders")
