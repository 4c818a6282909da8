"""Fixtures: a fresh PostgreSQL server and a fresh broker, each stopped after its test."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.broker import Broker
from devstack.ports import free_port
from devstack.postgres import PostgresServer


@pytest.fixture
def pg_server(tmp_path: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(tmp_path / "pg", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    started = Broker(free_port(), tmp_path / "broker.log")
    started.start()
    try:
        yield started
    finally:
        started.stop()
