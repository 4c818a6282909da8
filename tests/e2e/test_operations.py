"""Operating the stack: health, metrics, and the invariant checker as a command."""

import os
import subprocess
import sys
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

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


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 if absent)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0


async def test_the_saga_metrics_move_when_an_order_goes_through(client):
    async def scrape() -> str:
        return (await client.request("order", "GET", "/metrics")).text

    sku, customer = f"metered-{uuid.uuid4().hex[:6]}", f"metered-{uuid.uuid4().hex[:6]}"
    await client.put_product(sku, "Metered", 100, 5)
    await client.put_account(customer, 1_000)
    before = await scrape()
    response = await client.place_order(customer, [(sku, 1)])
    assert (await client.wait_terminal(response.json()["order_id"]))["status"] == "CONFIRMED"
    after = await scrape()

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("sagas_started_total") >= 1
    assert moved("sagas_finished_total", reason="", status="CONFIRMED") >= 1
    assert moved("saga_duration_seconds_count", status="CONFIRMED") >= 1
    assert moved("http_requests_total", method="POST", route="/v1/orders", status="202") >= 1
    assert (
        moved("events_consumed_total", event_type="PaymentSucceeded", topic="payments.events") >= 1
    )
    assert moved("outbox_published_total", topic="orders.events") >= 2  # OrderCreated v1 and v2
    assert "outbox_publish_lag_seconds_bucket" in after
    assert 'consumer_lag{partition="' in after
