"""One real stack for the end-to-end tests: three PostgreSQL servers, the broker, three services."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from devstack.client import SagaClient
from devstack.stack import SERVICES, Stack

SAGA_TIMEOUT_SECONDS = 10


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base: Path = tmp_path_factory.mktemp("stack")
    with Stack(
        base, free_ports=True, extra_env={"SAGA_TIMEOUT_SECONDS": str(SAGA_TIMEOUT_SECONDS)}
    ) as running:
        yield running


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[SagaClient]:
    async with SagaClient({svc: stack.url(svc) for svc in SERVICES}) as saga:
        yield saga
