"""Operating the stack: health, metrics, and the invariant checker as a command."""

import os
import subprocess
import sys

import pytest

from devstack.ports import free_port
from devstack.stack import SERVICES

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("svc", SERVICES)
async def test_health_and_metrics(client, svc):
    live = await client.request(svc, "GET", "/health/live")
    ready = await client.request(svc, "GET", "/health/ready")
    metrics = await client.request(svc, "GET", "/metrics")
    assert (live.status_code, ready.status_code, metrics.status_code) == (200, 200, 200)
    assert ready.json()["checks"] == {"database": True, "broker": True}
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "outbox_published_total" in metrics.text


def test_the_invariants_command_checks_a_running_stack(stack):
    env = {**os.environ, **{f"{svc.upper()}_URL": stack.url(svc) for svc in SERVICES}}
    result = subprocess.run(
        [sys.executable, "-m", "devstack", "invariants", "--settle", "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "invariants: all hold"


def test_the_invariants_command_explains_an_unreachable_stack():
    env = {
        **os.environ,
        **{f"{svc.upper()}_URL": f"http://127.0.0.1:{free_port()}" for svc in SERVICES},
    }
    result = subprocess.run(
        [sys.executable, "-m", "devstack", "invariants"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot read the services' APIs")
    assert "Traceback" not in result.stderr
