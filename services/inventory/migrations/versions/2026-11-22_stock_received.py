"""Units ever received per product: products.received = available + reserved + sold.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "products",
        sa.Column("received", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    # Every unit of an existing product was put in by a PUT, whichever bucket it sits in now.
    op.execute("UPDATE products SET received = available + reserved + sold")


def downgrade() -> None:
    op.drop_column("products", "received")
