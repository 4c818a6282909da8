"""`make scenario` and the console's control endpoints: each order control does what it says."""

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime

import httpx
import pytest

from devstack.ports import free_port
from devstack.workshop import CONSOLE_PORT_ENV, CONTROLS, SLOW_MS

pytestmark = pytest.mark.e2e


def scenario(*args: str, port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, CONSOLE_PORT_ENV: str(port)}
    return subprocess.run(
        [sys.executable, "-m", "devstack", "scenario", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_without_a_stack_it_says_so():
    result = scenario("place-order", port=free_port())
    assert result.returncode == 1
    assert "error: no stack is running" in result.stderr
    assert "make up" in result.stderr


@pytest.mark.parametrize("args", [(), ("no-such-thing",)])
def test_a_missing_or_unknown_name_lists_every_scenario(args):
    result = scenario(*args, port=free_port())
    assert result.returncode == 1
    assert "make scenario NAME=" in result.stderr
    for control in CONTROLS:
        assert f"  {control.name} " in result.stderr


async def test_each_order_scenario_ends_as_it_says(workshop, saga_client):
    expected = {
        "place-order": Counter({("CONFIRMED", None): 1}),
        "out-of-stock": Counter({("CANCELLED", "OUT_OF_STOCK"): 1}),
        "decline": Counter({("CANCELLED", "PAYMENT_DECLINED"): 1}),
        "burst": Counter({("CONFIRMED", None): 20}),
        "sell-out": Counter({("CONFIRMED", None): 5, ("CANCELLED", "OUT_OF_STOCK"): 15}),
    }
    for name, outcomes in expected.items():
        result = scenario(name, port=workshop.console_port)
        assert result.returncode == 0, result.stdout + result.stderr
        order_ids = [
            line.split()[1] for line in result.stdout.splitlines() if line.startswith("  order ")
        ]
        orders = [await saga_client.wait_terminal(order_id) for order_id in order_ids]
        assert Counter((o["status"], o["reason"]) for o in orders) == outcomes, name


async def test_the_controls_refuse_other_sites_and_unknown_names(workshop):
    async with httpx.AsyncClient(base_url=workshop.console_url) as http:
        foreign = await http.post(
            "/api/controls/place-order", headers={"Origin": "http://evil.example"}
        )
        unknown = await http.post("/api/controls/no-such-thing")
        restarted = await http.post("/api/controls/restart-order", timeout=120)
        started_twice = await http.post("/api/controls/start-broker")
    assert foreign.status_code == 403
    assert unknown.status_code == 404
    assert unknown.json()["names"] == [c.name for c in CONTROLS]
    assert restarted.status_code == 200, restarted.text
    assert (started_twice.status_code, started_twice.json()["message"]) == (
        409,
        "the broker is already running",
    )


async def test_a_slowed_service_makes_its_step_late_and_healing_it_makes_it_quick(
    workshop, saga_client
):
    proxy = workshop.stack.fault_proxy("payment")
    delayed_before = proxy.stats.delayed
    slowed = scenario("slow-payment", port=workshop.console_port)
    assert slowed.returncode == 0, slowed.stdout + slowed.stderr
    assert proxy.state.delay_ms == SLOW_MS
    try:
        placed = scenario("place-order", port=workshop.console_port)
        assert placed.returncode == 0, placed.stdout + placed.stderr
        (order_id,) = [
            line.split()[1] for line in placed.stdout.splitlines() if line.startswith("  order ")
        ]
        order = await saga_client.wait_terminal(order_id)
    finally:
        healed = scenario("heal-payment", port=workshop.console_port)
    assert healed.returncode == 0, healed.stdout + healed.stderr
    assert proxy.state.delay_ms == 0

    assert order["status"] == "CONFIRMED"
    at = {s["step"]: datetime.fromisoformat(s["at"]) for s in order["history"]}
    # Payment's answer reaches the broker late, so the order hears of it late.
    assert (at["PaymentSucceeded"] - at["OrderCreated"]).total_seconds() >= SLOW_MS / 1000
    assert proxy.stats.delayed > delayed_before
