"""Alembic environment: the order service's tables plus the chassis outbox and inbox."""

from chassis.migrations import run_migrations
from order_service.adapters.orm import metadata
from order_service.settings import Settings

run_migrations(metadata, Settings().database_url)
