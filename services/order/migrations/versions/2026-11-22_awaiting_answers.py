"""When an order's decision was last sent while it still awaits answers (the sweep re-sends it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Orders decided before this column existed stay NULL, not awaiting: the old
    # protocol asked for no answers.
    op.add_column("orders", sa.Column("awaiting_since", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_orders_awaiting_since",
        "orders",
        ["awaiting_since"],
        postgresql_where=sa.text("awaiting_since IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_orders_awaiting_since", table_name="orders")
    op.drop_column("orders", "awaiting_since")
