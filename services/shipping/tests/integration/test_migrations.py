"""The migrations match the ORM tables (and the chassis ones), and downgrade cleanly."""

from collections.abc import Callable

import pytest

pytestmark = pytest.mark.integration


def test_the_schema_matches_the_orm_and_survives_a_downgrade(
    service_database: str, migrations: Callable[..., object]
) -> None:
    migrations(
        "shipping",
        service_database,
        ["check"],
        ["downgrade", "base"],
        ["upgrade", "head"],
        ["check"],
    )
