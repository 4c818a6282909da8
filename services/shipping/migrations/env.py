"""Alembic environment: the shipping service's tables plus the chassis outbox and inbox."""

from chassis.migrations import run_migrations
from shipping_service.adapters.orm import metadata
from shipping_service.settings import Settings

run_migrations(metadata, Settings().database_url)
