"""The shipping service's tables (SQLAlchemy Core); the migrations create the same.

Add a `sa.Table(..., metadata, ...)` here and a migration that creates it
(`alembic revision --autogenerate -m ...` in services/shipping, then review it by
hand); Alembic compares the chassis outbox and inbox tables as well.
"""

from chassis.db import new_metadata

metadata = new_metadata()
