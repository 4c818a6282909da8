from pathlib import Path

import asyncpg
import pytest

from devstack.ports import free_port
from devstack.postgres import PostgresServer

from .helpers import process_gone

pytestmark = pytest.mark.integration


async def connect(
    server: PostgresServer, role: str, password: str, database: str
) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1", port=server.port, user=role, password=password, database=database
    )


async def test_a_role_reaches_its_own_database_and_no_other(pg_server):
    pg_server.provision("order", "order", "order-secret")
    pg_server.provision("payment", "payment", "payment-secret")

    conn = await connect(pg_server, "order", "order-secret", "order")
    try:
        assert await conn.fetchval("SELECT current_database()") == "order"
        await conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")  # it owns its schema
    finally:
        await conn.close()
    for database in ("postgres", "payment", "template1"):
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
            await connect(pg_server, "order", "order-secret", database)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await connect(pg_server, "payment", "wrong", "payment")


async def test_url_carries_the_role_and_a_quoted_password(pg_server):
    url = pg_server.provision("inventory", "inventory", "p@ss:w'rd/%")

    assert url.startswith("postgresql+asyncpg://inventory:")
    assert url == pg_server.url
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.close()


def test_stop_leaves_no_process(pg_server):
    pid = pg_server.pid
    assert pid is not None

    pg_server.stop()

    assert pg_server.pid is None
    assert process_gone(pid)


async def test_data_survives_a_kill_and_grants_survive_a_new_launcher(tmp_path):
    server = PostgresServer(tmp_path / "pg", free_port())
    server.start()
    try:
        server.provision("order", "order", "one")
        conn = await connect(server, "order", "one", "order")
        await conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
        await conn.close()
        pid = server.pid
        assert pid is not None
        server.kill()
        assert process_gone(pid)

        # A new object on the same data dir, as a second `make up` would create.
        server = PostgresServer(tmp_path / "pg", server.port)
        server.start()
        server.provision("payment", "payment", "two")
        conn = await connect(server, "order", "one", "order")
        assert await conn.fetchval("SELECT v FROM t") == 42
        await conn.close()
    finally:
        server.stop()


def test_a_long_data_dir_gets_a_short_socket_dir(tmp_path):
    server = PostgresServer(tmp_path / ("x" * 120), 5432)

    assert str(server.socket_dir).startswith("/tmp/devstack-pg-")
    # Not under tmp_path, whose length depends on the run (an xdist worker adds a level).
    short = Path("/tmp/devstack-test/pg")
    assert PostgresServer(short, 5432).socket_dir == short


def test_the_short_socket_dir_goes_with_the_server(tmp_path):
    server = PostgresServer(tmp_path / ("x" * 120), free_port())
    server.start()
    try:
        assert (server.socket_dir / f".s.PGSQL.{server.port}").is_socket()
    finally:
        server.stop()
    assert not server.socket_dir.exists()
