"""Each service's database is its own: no service's role can reach another's database."""

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from devstack.stack import SERVICES

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("owner", SERVICES)
async def test_a_service_role_reaches_only_its_own_database(stack, owner):
    url = make_url(stack.database_url(owner))
    own = await asyncpg.connect(
        user=url.username,
        password=url.password,
        host=url.host,
        port=url.port,
        database=url.database,
    )
    await own.close()
    for other in SERVICES:
        if other == owner:
            continue
        other_url = make_url(stack.database_url(other))
        with pytest.raises(
            (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidPasswordError)
        ):
            await asyncpg.connect(
                user=url.username,
                password=url.password,
                host=other_url.host,
                port=other_url.port,
                database=other_url.database,
            )
