"""Alembic environment: the payment service's tables plus the chassis outbox and inbox."""

from chassis.migrations import run_migrations
from payment_service.adapters.orm import metadata
from payment_service.settings import Settings

run_migrations(metadata, Settings().database_url)
