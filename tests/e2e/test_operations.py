"""Every service exposes liveness, readiness and Prometheus metrics."""

import pytest

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
