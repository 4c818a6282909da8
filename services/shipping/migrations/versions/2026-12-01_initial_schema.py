"""The chassis outbox and inbox; the shipping service's own tables come in later revisions.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from chassis.tables import (
    add_outbox_trace_context,
    create_messaging_tables,
    drop_messaging_tables,
    drop_outbox_trace_context,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables()
    add_outbox_trace_context()


def downgrade() -> None:
    drop_outbox_trace_context()
    drop_messaging_tables()
