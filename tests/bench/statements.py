"""What one statement costs a service's CPU, by the layer that runs it.

The services run every statement through SQLAlchemy's `AsyncSession.execute`. This
runs one small statement (a primary-key `SELECT` of a prepared statement, the shape of
most of a saga's) many times in one transaction on a PostgreSQL server of its own,
under uvloop as the services are, and reports this process's CPU per statement for
each layer below the session: SQLAlchemy's `AsyncConnection.execute` (no ORM
session), its `exec_driver_sql` (no statement compiled either), and asyncpg alone.
The difference between two layers is what the upper one costs per statement.

    .venv/bin/python tests/bench/statements.py [--statements N] [--rounds R]
"""

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import sqlalchemy as sa
import uvloop
from sqlalchemy.ext.asyncio import AsyncSession

from chassis.db import create_engine, create_sessionmaker
from devstack.ports import free_port
from devstack.postgres import PostgresServer

_METADATA = sa.MetaData()
_ROWS = sa.Table(
    "rows",
    _METADATA,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)
_SELECT = sa.select(_ROWS.c.id, _ROWS.c.value).where(_ROWS.c.id == sa.bindparam("id_"))
_SQL = "SELECT id, value FROM rows WHERE id = $1"

Layer = Callable[[AsyncSession, list[uuid.UUID]], Awaitable[None]]


async def _session(session: AsyncSession, ids: list[uuid.UUID]) -> None:
    for id_ in ids:
        (await session.execute(_SELECT, {"id_": id_})).first()


async def _connection(session: AsyncSession, ids: list[uuid.UUID]) -> None:
    connection = await session.connection()
    for id_ in ids:
        (await connection.execute(_SELECT, {"id_": id_})).first()


async def _driver_sql(session: AsyncSession, ids: list[uuid.UUID]) -> None:
    connection = await session.connection()
    for id_ in ids:
        (await connection.exec_driver_sql(_SQL, (id_,))).first()


async def _asyncpg(session: AsyncSession, ids: list[uuid.UUID]) -> None:
    raw = await (await session.connection()).get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    for id_ in ids:
        await driver.fetchrow(_SQL, id_)


LAYERS: dict[str, Layer] = {
    "AsyncSession.execute (the services)": _session,
    "AsyncConnection.execute": _connection,
    "AsyncConnection.exec_driver_sql": _driver_sql,
    "asyncpg fetchrow": _asyncpg,
}


async def measure(url: str, statements: int, rounds: int) -> dict[str, float]:
    """Median CPU microseconds per statement of each layer, over `rounds` runs by turns."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_METADATA.create_all)
            await connection.execute(
                _ROWS.insert(), [{"id": uuid.uuid4(), "value": n} for n in range(100)]
            )
        sessions = create_sessionmaker(engine)
        ids = [uuid.uuid4() for _ in range(statements)]
        spent: dict[str, list[float]] = {name: [] for name in LAYERS}
        for _ in range(rounds):
            for name, layer in LAYERS.items():
                async with sessions() as session, session.begin():
                    await layer(session, ids[:10])  # the statement prepared, the BEGIN sent
                    started = time.process_time()
                    await layer(session, ids)
                    spent[name].append((time.process_time() - started) / statements * 1e6)
        return {name: statistics.median(values) for name, values in spent.items()}
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    """Start a PostgreSQL server of its own, measure, print a table, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=3000, help="per layer and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="statements-") as tmp:
        server = PostgresServer(Path(tmp) / "pg", free_port())
        server.start()
        try:
            url = server.provision("statements", "statements", "statements")
            cost = uvloop.run(measure(url, args.statements, args.rounds))
        finally:
            server.stop()
    print(f"CPU of this process per statement, median of {args.rounds} rounds by turns:")
    for name, microseconds in cost.items():
        print(f"  {name:<38} {microseconds:6.0f} us")


if __name__ == "__main__":
    main()
