"""The body of every service's Alembic `env.py`: online, async, one database."""

import asyncio

from alembic import context
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from chassis import tables


def run_migrations(service_metadata: MetaData, database_url: str) -> None:
    """Run the pending migrations of the current Alembic context against `database_url`."""
    target = [service_metadata, tables.metadata]

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(database_url)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
            await connection.commit()
        await engine.dispose()

    asyncio.run(run())
