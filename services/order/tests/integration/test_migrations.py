"""The hand-written migrations match the ORM tables, and the latest one downgrades cleanly."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SERVICE_DIR = Path(__file__).resolve().parents[2]


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "alembic.ini", *args],
        cwd=SERVICE_DIR,
        env={**os.environ, "ORDER_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_schema_matches_the_orm_and_survives_a_downgrade(
    database_url: Callable[[str], str],
) -> None:
    url = database_url("order")  # migrated to head
    steps = (
        ["check"],
        ["downgrade", "-1"],
        ["upgrade", "head"],
        ["check"],
        ["downgrade", "base"],
        ["upgrade", "head"],
        ["check"],
    )
    for step in steps:
        result = alembic(url, *step)
        assert result.returncode == 0, f"alembic {' '.join(step)}: {result.stderr}"


def test_one_downgrade_leaves_the_initial_schema(database_url: Callable[[str], str]) -> None:
    url = database_url("order")
    assert alembic(url, "downgrade", "-1").returncode == 0
    current = alembic(url, "current")
    assert current.returncode == 0, current.stderr
    assert "0001" in current.stdout and "0002" not in current.stdout
