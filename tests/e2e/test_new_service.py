"""A fourth service joins the saga without touching the other three (issue 8).

Two claims, each a test:

- *Zero lines changed.* Every commit that added or changed the shipping service or its
  events left order, inventory and payment alone, the three run here as committed, and
  their code does not know that shipping exists. Not a diff against one base (which
  would fail on any later, unrelated change to the three), but the rule itself: work
  on shipping never needed a change elsewhere.
- *It joins a running saga.* A stack of the three serves orders; shipping starts beside
  it (its own database, migrations, process; nothing else restarted), catches up on the
  orders confirmed before it existed, ships the new ones, cancels the shipment of an
  order cancelled after confirmation, ships nothing for a failed order, and every
  invariant of the saga still holds.
"""

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.client import SagaClient
from devstack.invariants import settle
from devstack.scenarios import Scenarios
from devstack.stack import SERVICES, Stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).parents[2]
THE_THREE = ("services/order", "services/inventory", "services/payment")
SHIPPING = ("services/shipping", "shared-contracts/src/shared_contracts/shipment")
"""The service and its events: everything the feature "add shipping" consists of."""


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout


def test_adding_shipping_changed_no_line_of_order_inventory_or_payment():
    commits = git("log", "--format=%H", "--", *SHIPPING).split()
    assert commits, "no commit adds services/shipping (a shallow clone?)"
    for commit in commits:
        touched = git("diff-tree", "--root", "--no-commit-id", "--name-only", "-r", commit)
        elsewhere = [
            p for p in touched.splitlines() if p.startswith(tuple(f"{t}/" for t in THE_THREE))
        ]
        assert elsewhere == [], f"{commit[:12]} changed shipping and also {elsewhere}"
    # What the stack below runs is the committed three, nothing edited on the side.
    uncommitted = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", *THE_THREE], cwd=REPO)
    assert uncommitted.returncode == 0, "order, inventory or payment has uncommitted changes"
    for service in THE_THREE:
        mentions = subprocess.run(
            ["grep", "-rliE", "shipping|shipment", f"{service}/src", f"{service}/contracts"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert mentions.stdout == "", f"{service} knows about shipping: {mentions.stdout}"


@pytest.fixture(scope="module")
def stack_before_shipping(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The saga's three services alone, as they ran before shipping existed."""
    base = tmp_path_factory.mktemp("stack-with-shipping")
    with Stack(base, free_ports=True, extra_env={"SAGA_TIMEOUT_SECONDS": "10"}) as running:
        yield running


async def shipment(shipping: httpx.AsyncClient, order_id: str, status: str) -> dict[str, Any]:
    """The order's shipment once it has `status` (events take a moment to arrive)."""
    async with asyncio.timeout(30):
        while True:
            response = await shipping.get(f"/v1/shipments/{order_id}")
            if response.status_code == 200 and response.json()["status"] == status:
                found: dict[str, Any] = response.json()
                return found
            await asyncio.sleep(0.1)


async def test_shipping_joins_the_running_saga_and_ships_what_is_confirmed(
    stack_before_shipping: Stack,
):
    stack = stack_before_shipping
    async with SagaClient({svc: stack.url(svc) for svc in SERVICES}) as client:
        scenarios = Scenarios(client, tag=f"ship-{uuid.uuid4().hex[:6]}")
        await scenarios.seed()
        [before] = await scenarios.happy_path()

        # Shipping joins: the other services keep running and are not told.
        pids = {svc: stack.pid(svc) for svc in SERVICES}
        await asyncio.to_thread(stack.add_service, "shipping")
        assert {svc: stack.pid(svc) for svc in SERVICES} == pids

        [confirmed] = await scenarios.happy_path()
        [cancelled] = await scenarios.customer_cancellation()
        [failed] = await scenarios.out_of_stock()
        outcomes = [before, confirmed, cancelled, failed]
        assert all(o.as_expected for o in outcomes), [o.order["status"] for o in outcomes]

        async with httpx.AsyncClient(base_url=stack.url("shipping")) as shipping:
            # Confirmed before shipping existed: it reads orders.events from the start.
            caught_up = await shipment(shipping, before.order["order_id"], "SCHEDULED")
            shipped = await shipment(shipping, confirmed.order["order_id"], "SCHEDULED")
            undone = await shipment(shipping, cancelled.order["order_id"], "CANCELLED")
            none = await shipping.get(f"/v1/shipments/{failed.order['order_id']}")
            ready = await shipping.get("/health/ready")
        assert caught_up["cancelled_at"] is None and shipped["cancelled_at"] is None
        assert undone["cancelled_at"] is not None
        assert none.status_code == 404
        assert ready.status_code == 200
        assert (await settle(client)).violations == []
