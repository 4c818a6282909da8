"""The hand-written migrations match the ORM tables, and the latest one downgrades cleanly."""

from collections.abc import Callable
from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_the_schema_matches_the_orm_and_survives_a_downgrade(
    database_url: Callable[[str], str], migrations: Callable[..., object]
) -> None:
    url = database_url("order")  # migrated to head
    migrations(
        "order",
        url,
        ["check"],
        ["downgrade", "-1"],
        ["upgrade", "head"],
        ["check"],
        ["downgrade", "base"],
        ["upgrade", "head"],
        ["check"],
    )


def test_one_downgrade_leaves_the_previous_revision(
    database_url: Callable[[str], str], migrations: Callable[..., list[Any]]
) -> None:
    url = database_url("order")
    *_, current = migrations("order", url, ["downgrade", "-1"], ["current"])
    assert "0004" in current.stdout and "0005" not in current.stdout
