"""The hand-written migration matches the ORM tables, and downgrades cleanly."""

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
        env={**os.environ, "INVENTORY_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_schema_matches_the_orm_and_survives_a_downgrade(
    database_url: Callable[[str], str],
) -> None:
    url = database_url("inventory")  # migrated to head
    for step in (["check"], ["downgrade", "base"], ["upgrade", "head"], ["check"]):
        result = alembic(url, *step)
        assert result.returncode == 0, f"alembic {' '.join(step)}: {result.stderr}"
