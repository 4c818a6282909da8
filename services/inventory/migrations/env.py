"""Alembic environment: the inventory service's tables plus the chassis outbox and inbox."""

from chassis.migrations import run_migrations
from inventory_service.adapters.orm import metadata
from inventory_service.settings import Settings

run_migrations(metadata, Settings().database_url)
