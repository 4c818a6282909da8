import asyncio
import os
import socket
import subprocess
import sys

import asyncpg
import httpx
import pytest

from devstack.errors import DevstackError
from devstack.ports import check_port_free
from devstack.stack import Ports, Stack, discover_services, service_env, service_ports

from .helpers import process_gone


def test_a_service_sees_only_its_own_database_url():
    environ = {"ORDER_DATABASE_URL": "o", "PAYMENT_DATABASE_URL": "p", "PATH": "/bin"}

    env = service_env(
        "payment",
        environ,
        database_url="mine",
        port=8003,
        bootstrap="127.0.0.1:9092",
        extra={"SAGA_TIMEOUT_SECONDS": "5"},
    )

    assert env == {
        "PATH": "/bin",
        "PAYMENT_DATABASE_URL": "mine",
        "PAYMENT_PORT": "8003",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "SAGA_TIMEOUT_SECONDS": "5",
    }


def test_default_ports_yield_to_the_environment():
    ports = Ports.defaults(("order", "payment"), {"PAYMENT_PORT": "9003", "BROKER_PORT": "19092"})

    assert ports.services == {"order": 8001, "payment": 9003}
    assert ports.broker == 19092
    with pytest.raises(DevstackError, match="ORDER_PORT='x' is not a TCP port"):
        Ports.defaults(("order",), {"ORDER_PORT": "x"})


def test_services_are_discovered_with_the_ports_each_declares(tmp_path):
    for name, port in (("payment", 8003), ("order", 8001), ("widget", 8004)):
        (tmp_path / "services" / name).mkdir(parents=True)
        (tmp_path / "services" / name / "alembic.ini").write_text("")
        (tmp_path / "services" / name / "pyproject.toml").write_text(
            f"[tool.devstack]\nport = {port}\npostgres-port = {port - 2570}\n"
        )
    (tmp_path / "services" / "notes").mkdir()  # no service: no pyproject.toml, no alembic.ini

    assert discover_services(tmp_path) == ("order", "payment", "widget")
    assert service_ports(tmp_path, "widget") == (8004, 5434)
    ports = Ports.defaults(("widget",), {"WIDGET_PG_PORT": "6000"}, tmp_path)
    assert (ports.services, ports.postgres) == ({"widget": 8004}, {"widget": 6000})


def test_a_service_without_declared_ports_is_named(tmp_path):
    (tmp_path / "services" / "widget").mkdir(parents=True)
    (tmp_path / "services" / "widget" / "pyproject.toml").write_text("[project]\n")
    with pytest.raises(DevstackError, match=r"widget/pyproject.toml: no \[tool.devstack\] port"):
        service_ports(tmp_path, "widget")


def test_a_taken_port_is_named_with_the_variable_that_moves_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DevstackError) as failure:
            check_port_free(port, "order service", "ORDER_PORT")
    assert str(failure.value) == (
        f"port {port} is already in use (order service); set ORDER_PORT to another port"
    )


@pytest.mark.integration
def test_a_failed_start_leaves_no_process_behind(tmp_path, monkeypatch):
    # The services do not exist yet here; migrations are the step that fails, after
    # the databases, the broker and the topics are up.
    seen: dict[str, int | None] = {}
    lines: list[str] = []

    def failing_migrate(stack: Stack) -> None:
        seen["inventory"] = stack.postgres("inventory").pid
        seen["broker"] = stack.broker.pid
        with pytest.raises(KeyError):
            stack.postgres("order")  # its URL came from the environment
        raise DevstackError("migrations failed on purpose")

    monkeypatch.setattr(Stack, "migrate", failing_migrate)
    stack = Stack(
        tmp_path / "stack",
        repo_root=tmp_path,
        services=("order", "inventory"),
        free_ports=True,
        environ={**os.environ, "ORDER_DATABASE_URL": "postgresql+asyncpg://o:o@127.0.0.1:1/o"},
        progress=lines.append,
    )
    with pytest.raises(DevstackError, match="on purpose"):
        stack.start()

    assert seen["inventory"] and process_gone(seen["inventory"])
    assert seen["broker"] and process_gone(seen["broker"])
    assert any(line.startswith("starting PostgreSQL for inventory on :") for line in lines)
    assert "creating topics ... ok" in " ".join(lines)
    assert lines[-1].startswith("stopping PostgreSQL for inventory ... ok")
    stack.stop()  # idempotent


@pytest.mark.integration
def test_stop_stops_everything_even_when_reporting_fails(tmp_path):
    # `make demo | head` closes stdout: printing a progress line then raises, and
    # that must not leave the remaining processes running.
    def progress(line: str) -> None:
        if line.startswith("stopping"):
            raise BrokenPipeError(line)

    stack = Stack(
        tmp_path,
        repo_root=tmp_path,
        services=("order", "payment"),
        free_ports=True,
        progress=progress,
    )
    stack.start_infrastructure()
    pids = [stack.postgres("order").pid, stack.postgres("payment").pid, stack.broker.pid]
    with pytest.raises(BrokenPipeError):
        stack.stop()
    assert all(pid and process_gone(pid) for pid in pids)


@pytest.mark.integration
async def test_the_stack_provisions_a_reachable_database(tmp_path):
    stack = Stack(tmp_path, repo_root=tmp_path, services=("payment",), free_ports=True)
    try:
        stack.start_infrastructure()
        url = stack.database_url("payment")
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        assert await conn.fetchval("SELECT current_user") == "payment"
        await conn.close()
    finally:
        stack.stop()


@pytest.mark.integration
async def test_a_database_behind_its_proxy_is_as_far_away_as_asked(tmp_path):
    stack = Stack(
        tmp_path,
        repo_root=tmp_path,
        services=("payment",),
        free_ports=True,
        database_proxies=("payment",),
    )
    try:
        stack.start_infrastructure()
        proxy = stack.database_proxy("payment")
        url = stack.database_url("payment")
        assert f"@{proxy.address}/" in url
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        loop = asyncio.get_running_loop()

        async def round_trips(count: int) -> float:
            started = loop.time()
            for i in range(count):
                assert await conn.fetchval("SELECT $1::int", i) == i
            return loop.time() - started

        near = await round_trips(10)
        proxy.slow(20)
        far = await round_trips(10)
        await conn.close()
        assert far >= 10 * 0.020 > near
        assert proxy.stats.delayed >= 10
    finally:
        stack.stop()
    with pytest.raises(OSError):  # the proxy stopped with the stack
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()


@pytest.mark.integration
def test_up_reports_a_taken_port_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "up"],
            env={**os.environ, "ORDER_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: port {port} is already in use (order service); set ORDER_PORT to another port\n"
    )


FAKE_SERVICE = """
import http.server, os

class Pid(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.HTTPServer(("127.0.0.1", int(os.environ["PAYMENT_PORT"])), Pid).serve_forever()
"""
"""A stand-in for `python -m payment_service`: answers every GET with its pid."""


@pytest.mark.integration
def test_more_instances_of_a_service_run_side_by_side_and_stop_with_the_stack(
    tmp_path, monkeypatch
):
    package = tmp_path / "services" / "payment" / "payment_service"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(FAKE_SERVICE)
    monkeypatch.setattr(Stack, "_create_topics", lambda _: None)
    stack = Stack(
        tmp_path / "stack",
        repo_root=tmp_path,
        services=("payment",),
        free_ports=True,
        environ={
            **os.environ,
            "PAYMENT_DATABASE_URL": "postgresql+asyncpg://p:p@127.0.0.1:1/p",
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        },
    )
    pids: list[int] = []
    try:
        stack.start_infrastructure()
        stack.start_services()
        names = ["payment", stack.start_instance("payment"), stack.start_instance("payment")]
        assert names == ["payment", "payment-2", "payment-3"]
        for name in names:
            pids.append(stack.pid(name))
            assert httpx.get(stack.url(name)).text == str(pids[-1])
            assert stack.log_path(name).name == f"{name}.log"
        assert len({stack.url(name) for name in names}) == 3

        stack.kill("payment-2")
        assert process_gone(pids[1])
        stack.start_service("payment-2")  # back on its own port
        pids.append(stack.pid("payment-2"))
        assert httpx.get(stack.url("payment-2")).text == str(pids[-1])
    finally:
        stack.stop()
    assert all(process_gone(pid) for pid in pids)
