"""The hand-written migrations match the ORM tables, downgrade cleanly, and backfill."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from chassis.db import create_engine

pytestmark = pytest.mark.integration

SERVICE_DIR = Path(__file__).resolve().parents[2]


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "alembic.ini", *args],
        cwd=SERVICE_DIR,
        env={**os.environ, "INVENTORY_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )


def run(url: str, *steps: list[str]) -> None:
    for step in steps:
        result = alembic(url, *step)
        assert result.returncode == 0, f"alembic {' '.join(step)}: {result.stderr}"


def test_the_schema_matches_the_orm_and_survives_a_downgrade(
    database_url: Callable[[str], str],
) -> None:
    url = database_url("inventory")  # migrated to head
    run(url, ["check"], ["downgrade", "base"], ["upgrade", "head"], ["check"])


async def test_received_is_backfilled_with_the_buckets_and_dropped_on_downgrade(
    database_url: Callable[[str], str],
) -> None:
    url = database_url("inventory")
    run(url, ["downgrade", "0001"])
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO products (sku, name, unit_price_cents, available, reserved,"
                    " sold, version) VALUES ('A', 'a', 1, 5, 2, 3, 1), ('B', 'b', 1, 0, 0, 0, 1)"
                )
            )
        run(url, ["upgrade", "head"], ["check"])
        async with engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT sku, received FROM products ORDER BY sku"))
            assert [tuple(r) for r in rows] == [("A", 10), ("B", 0)]
        run(url, ["downgrade", "0001"])
        async with engine.connect() as conn:
            columns = await conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = 'products' AND column_name = 'received'"
                )
            )
            assert columns.all() == []
        run(url, ["upgrade", "head"], ["check"])
    finally:
        await engine.dispose()
