"""Money ever deposited per account: balance = deposited - charged + refunded.

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
        "accounts",
        sa.Column("deposited_cents", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    # What an existing account holds, plus what it paid, minus what came back, was put in.
    op.execute(
        """
        UPDATE accounts AS a
        SET deposited_cents = a.balance_cents
            + COALESCE((SELECT SUM(p.amount_cents) FROM payments AS p
                        WHERE p.customer_id = a.customer_id AND p.kind = 'charge'), 0)
            - COALESCE((SELECT SUM(p.amount_cents) FROM payments AS p
                        WHERE p.customer_id = a.customer_id AND p.kind = 'refund'), 0)
        """
    )


def downgrade() -> None:
    op.drop_column("accounts", "deposited_cents")
