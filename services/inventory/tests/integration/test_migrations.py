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
    url = database_url("inventory")  # migrated to head
    migrations("inventory", url, ["check"], ["downgrade", "base"], ["upgrade", "head"], ["check"])


async def test_received_and_cancelled_orders_are_backfilled_and_dropped_on_downgrade(
    database_url: Callable[[str], str], migrations: Callable[..., object]
) -> None:
    url = database_url("inventory")
    migrations("inventory", url, ["downgrade", "0001"])
    released = uuid.uuid4()
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO products (sku, name, unit_price_cents, available, reserved,"
                    " sold, version) VALUES ('A', 'a', 1, 5, 2, 3, 1), ('B', 'b', 1, 0, 0, 0, 1)"
                )
            )
            await conn.execute(
                sa.text(
                    "INSERT INTO reservations (order_id, sku, quantity, status) VALUES"
                    " (:released, 'A', 1, 'released'), (:released, 'B', 1, 'released'),"
                    " (:held, 'A', 2, 'reserved')"
                ),
                {"released": released, "held": uuid.uuid4()},
            )
        migrations("inventory", url, ["upgrade", "head"], ["check"])
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT sku, received FROM products ORDER BY sku"))
            assert [tuple(r) for r in rows] == [("A", 10), ("B", 0)]
            # A released order was cancelled: a late OrderCreated must not reserve for it.
            cancelled = await conn.execute(sa.text("SELECT order_id FROM cancelled_orders"))
            assert cancelled.scalars().all() == [released]
        migrations("inventory", url, ["downgrade", "0001"])
        async with engine.connect() as conn:
            columns = await conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = 'products' AND column_name = 'received'"
                )
            )
            assert columns.all() == []
        migrations("inventory", url, ["upgrade", "head"], ["check"])
    finally:
        await engine.dispose()
