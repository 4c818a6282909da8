"""The outbox and inbox tables, the same in every service's database.

Each service's first migration calls `create_messaging_tables()`, and its Alembic
`env.py` compares against `metadata` next to its own, so autogenerate sees them.
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from chassis.db import new_metadata


def _outbox_columns() -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    ]


def _processed_events_columns() -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_processed_events"),
    ]


_TABLES: dict[str, Callable[[], list[sa.schema.SchemaItem]]] = {
    "outbox": _outbox_columns,
    "processed_events": _processed_events_columns,
}

metadata = new_metadata()


def _trace_context_column() -> sa.Column[dict[str, str] | None]:
    # Added after the first release: `_outbox_columns` stays what the first migration made.
    return sa.Column("trace_context", postgresql.JSONB)


outbox = sa.Table("outbox", metadata, *_outbox_columns(), _trace_context_column())
"""Events written in the same transaction as the state change that caused them, with
the W3C trace context (`traceparent`, ...) of the span that wrote each (None untraced)."""

processed_events = sa.Table("processed_events", metadata, *_processed_events_columns())
"""The inbox: one row per event a consumer has applied, so a redelivery is a no-op."""


def create_messaging_tables() -> None:
    """Create the outbox and inbox tables (call from a migration's `upgrade`)."""
    for name, columns in _TABLES.items():
        op.create_table(name, *columns())


def add_outbox_trace_context() -> None:
    """Add the outbox's `trace_context` column (call from a migration's `upgrade`)."""
    op.add_column("outbox", _trace_context_column())


def drop_outbox_trace_context() -> None:
    """Drop the outbox's `trace_context` column (call from a migration's `downgrade`)."""
    op.drop_column("outbox", "trace_context")


def drop_messaging_tables() -> None:
    """Drop the outbox and inbox tables (call from a migration's `downgrade`)."""
    for name in reversed(_TABLES):
        op.drop_table(name)
