"""`make up` serves the console, and `make scenario` works against it, as a trainer uses them.

`python -m devstack up` runs as a process of its own (all ports moved to free ones by
their variables, data in a temporary directory), and is stopped with SIGTERM by pid.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack import _process
from devstack.ports import free_port
from devstack.stack import BROKER_PORT_ENV, discover_services, pg_port_env, port_env
from devstack.workshop import CONSOLE_PORT_ENV

from .guide import REPO

pytestmark = pytest.mark.e2e


def up_env(console_port: int) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("TRACES_DIR", "KAFKA_BOOTSTRAP_SERVERS")
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env[CONSOLE_PORT_ENV] = str(console_port)
    env[BROKER_PORT_ENV] = str(free_port())
    # Every service `up` runs (shipping too), so that no port is a fixed default.
    for svc in discover_services(REPO):
        env[port_env(svc)], env[pg_port_env(svc)] = str(free_port()), str(free_port())
    return env


def test_up_serves_the_console_and_make_scenario_drives_it(tmp_path: Path):
    console_port = free_port()
    env = up_env(console_port)
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "devstack", "up", "--dir", str(tmp_path / "stack")],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        # Generous: on a loaded machine starting four databases and migrating them
        # has taken over 100 s.
        deadline = time.monotonic() + 300
        while "press Ctrl-C to stop" not in log_path.read_text():
            assert up.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        assert f"console    http://127.0.0.1:{console_port}/" in log_path.read_text()

        result = subprocess.run(
            ["make", "-s", "scenario", "NAME=place-order"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        match = re.search(r"^  order ([0-9a-f-]{36})$", result.stdout, re.MULTILINE)
        assert match, result.stdout
        order = wait_confirmed(f"http://127.0.0.1:{console_port}", match.group(1))
        # Tracing is on under `make up` (spans in <dir>/traces/), so the order has a trace id.
        assert re.fullmatch(r"[0-9a-f]{32}", str(order["trace_id"])), order
    finally:
        status = _process.stop_process(up, signal.SIGTERM, timeout=60)
    output = log_path.read_text()
    assert status == 0, output
    assert output.rstrip().endswith("stopped"), output


def wait_confirmed(console: str, order_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        response = httpx.get(f"{console}/api/orders/{order_id}")
        if response.status_code == 200 and response.json()["status"] == "CONFIRMED":
            order: dict[str, Any] = response.json()
            return order
        time.sleep(0.2)
    raise AssertionError(f"the console never showed {order_id} CONFIRMED")


def test_up_refuses_a_taken_console_port_before_starting_anything(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "up", "--dir", str(tmp_path / "stack")],
            env=up_env(port),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} is already in use (saga console); set CONSOLE_PORT" in result.stderr
    assert not (tmp_path / "stack").exists()
