"""One stack for the workshop tests, with the saga console and its controls on free ports.

The saga timeout is long (60 s) because these tests keep orders waiting on purpose
while a service is down; the services write their spans to files (`TRACES_DIR`) so
that orders have trace ids, as under `make up`.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.client import SagaClient
from devstack.ports import free_port
from devstack.stack import SERVICES, Stack
from devstack.workshop import serve_console

from ..conftest import Shared

SAGA_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Workshop:
    """A running stack and the URL of its console."""

    stack: Stack
    console_url: str
    console_port: int


@contextmanager
def running_workshop(base: Path) -> Iterator[Workshop]:
    """A stack with fault proxies and its console, as `make up` runs them."""
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


@pytest.fixture(scope="session")
def shared_workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared[Workshop]]:
    with Shared(lambda: running_workshop(tmp_path_factory.mktemp("workshop-stack"))) as shared:
        yield shared


@pytest.fixture
def workshop(
    request: pytest.FixtureRequest, shared_workshop: Shared[Workshop]
) -> Iterator[Workshop]:
    """The stack the workshop tests share, stopped after the last of them in a row."""
    yield from shared_workshop.lend(request)


@pytest.fixture
async def saga_client(workshop: Workshop) -> AsyncIterator[SagaClient]:
    async with SagaClient({svc: workshop.stack.url(svc) for svc in SERVICES}) as client:
        yield client
