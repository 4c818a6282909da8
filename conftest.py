"""Fixtures shared by every package's integration tests: a real PostgreSQL and a real broker.

Both are started once per test session on free ports and stopped at its end.
"""

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack._aio import run_sync
from devstack.broker import Broker
from devstack.ports import free_port
from devstack.postgres import PostgresServer
from devstack.topics import create_topics

REPO = Path(__file__).parent


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path_factory.mktemp("pg") / "data", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = Broker(free_port(), tmp_path_factory.mktemp("broker") / "broker.log")
    server.start()
    try:
        run_sync(create_topics(server.bootstrap_servers))
        yield server.bootstrap_servers
    finally:
        server.stop()


def migrate(service: str, url: str) -> None:
    """Run `alembic upgrade head` for `service` against `url`, as the launcher does."""
    env = {**os.environ, f"{service.upper()}_DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "alembic.ini", "upgrade", "head"],
        cwd=REPO / "services" / service,
        env=env,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def database_url(postgres: PostgresServer) -> Callable[[str], str]:
    """Factory: a fresh database for `service`, migrated to head; returns its URL."""

    def make(service: str) -> str:
        name = f"{service}_{secrets.token_hex(4)}"
        url = postgres.provision(name, name, secrets.token_hex(8))
        migrate(service, url)
        return url

    return make
