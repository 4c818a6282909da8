"""Remember cancelled orders: an OrderCreated arriving after the cancellation reserves nothing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cancelled_orders",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "cancelled_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("order_id", name="pk_cancelled_orders"),
    )
    # Orders released before this migration were cancelled too.
    op.execute(
        "INSERT INTO cancelled_orders (order_id, cancelled_at) "
        "SELECT order_id, max(updated_at) FROM reservations WHERE status = 'released' "
        "GROUP BY order_id"
    )


def downgrade() -> None:
    op.drop_table("cancelled_orders")
