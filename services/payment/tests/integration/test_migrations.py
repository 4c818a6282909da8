"""The hand-written migrations match the ORM tables, downgrade cleanly, and backfill."""

import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from chassis.db import create_engine

pytestmark = pytest.mark.integration


def test_the_schema_matches_the_orm_and_survives_a_downgrade(
    database_url: Callable[[str], str], migrations: Callable[..., object]
) -> None:
    url = database_url("payment")  # migrated to head
    migrations("payment", url, ["check"], ["downgrade", "base"], ["upgrade", "head"], ["check"])


async def test_deposits_and_cancelled_orders_are_backfilled_and_dropped_on_downgrade(
    database_url: Callable[[str], str], migrations: Callable[..., object]
) -> None:
    url = database_url("payment")
    migrations("payment", url, ["downgrade", "0001"])
    refunded = uuid.uuid4()
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO accounts (customer_id, balance_cents)"
                    " VALUES ('alice', 300), ('bob', 50), ('carol', 0)"
                )
            )
            # alice: charged 700 and 200, refunded 200; bob: charged 100, nothing back.
            await conn.execute(
                sa.text(
                    "INSERT INTO payments (payment_id, order_id, customer_id, kind, amount_cents)"
                    " VALUES (gen_random_uuid(), :o1, 'alice', 'charge', 700),"
                    " (gen_random_uuid(), :o2, 'alice', 'charge', 200),"
                    " (gen_random_uuid(), :o2, 'alice', 'refund', 200),"
                    " (gen_random_uuid(), :o3, 'bob', 'charge', 100)"
                ),
                {"o1": uuid.uuid4(), "o2": refunded, "o3": uuid.uuid4()},
            )
        migrations("payment", url, ["upgrade", "head"], ["check"])
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT customer_id, deposited_cents FROM accounts ORDER BY customer_id")
            )
            assert [tuple(r) for r in rows] == [("alice", 1000), ("bob", 150), ("carol", 0)]
            # A refunded order was cancelled: a late OrderCreated must not charge it.
            cancelled = await conn.execute(sa.text("SELECT order_id FROM cancelled_orders"))
            assert cancelled.scalars().all() == [refunded]
        migrations("payment", url, ["downgrade", "0001"])
        async with engine.connect() as conn:
            columns = await conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = 'accounts' AND column_name = 'deposited_cents'"
                )
            )
            assert columns.all() == []
        migrations("payment", url, ["upgrade", "head"], ["check"])
    finally:
        await engine.dispose()
