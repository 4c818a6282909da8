"""One stack for the workshop tests, with the saga console and its controls on free ports.

The saga timeout is long (60 s) because these tests keep orders waiting on purpose
while a service is down; the services write their spans to files (`TRACES_DIR`) so
that orders have trace ids, as under `make up`.
"""

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.client import SagaClient
from devstack.ports import free_port
from devstack.stack import SERVICES, Stack
from devstack.workshop import serve_console

SAGA_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Workshop:
    """A running stack and the URL of its console."""

    stack: Stack
    console_url: str
    console_port: int


@pytest.fixture(scope="session")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    base: Path = tmp_path_factory.mktemp("workshop-stack")
    extra_env = {
        "SAGA_TIMEOUT_SECONDS": str(SAGA_TIMEOUT_SECONDS),
        "TRACES_DIR": str(base / "traces"),
    }
    port = free_port()
    with (
        Stack(base, free_ports=True, extra_env=extra_env, fault_proxies=SERVICES) as stack,
        serve_console(stack, port) as console,
    ):
        yield Workshop(stack, console.url, port)


@pytest.fixture
async def saga_client(workshop: Workshop) -> AsyncIterator[SagaClient]:
    async with SagaClient({svc: workshop.stack.url(svc) for svc in SERVICES}) as client:
        yield client
