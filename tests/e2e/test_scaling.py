"""Consumer scaling: instances of a service share its consumer group's partitions.

A second payment and a second inventory process join their groups; the partitions
of `orders.events` are split between the two instances of each. One of each is then
SIGKILLed in the middle of a burst of orders: once the group's session timeout has
passed, the survivor owns every partition, and every order still ends exactly once.
"""

import asyncio
import logging
import re
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.client import TERMINAL
from devstack.invariants import settle
from devstack.scenarios import Scenarios, history_complete
from devstack.stack import Stack
from shared_contracts import Topic

from .conftest import place_until_accepted

pytestmark = pytest.mark.e2e

log = logging.getLogger(__name__)

TOPIC = Topic.ORDER_EVENTS
"""What payment and inventory consume."""
PARTITIONS = 6
SCALED = ("payment", "inventory")
ORDERS = 40
REBALANCE_TIMEOUT = 30.0
"""The session timeout (6 s) plus the broker's rebalance delay (3 s), with room to spare."""


async def scrape(http: httpx.AsyncClient, url: str) -> tuple[int, float]:
    """From a process's /metrics: the partitions of TOPIC it owns, the events of TOPIC it applied."""
    response = await http.get(f"{url}/metrics")
    response.raise_for_status()
    assigned, applied = 0, 0.0
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.labels.get("topic") != TOPIC:
                continue
            if sample.name == "consumer_assigned_partitions":
                assigned = int(sample.value)
            elif sample.name == "events_consumed_total":
                applied += sample.value
    return assigned, applied


def logged_assignment(log_path: Path) -> set[int]:
    """The partitions of TOPIC in the last assignment a process logged."""
    lines = re.findall(r"group \S+: assigned (.*)", log_path.read_text(errors="replace"))
    found = re.search(rf"{re.escape(TOPIC)}\[([\d, ]*)\]", lines[-1]) if lines else None
    return {int(n) for n in found.group(1).split(",") if n.strip()} if found else set()


async def wait_assigned(http: httpx.AsyncClient, stack: Stack, owners: list[str]) -> dict[str, int]:
    """Wait until each of `owners` has partitions and they hold all of TOPIC's per service."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + REBALANCE_TIMEOUT
    while True:
        counts = {name: (await scrape(http, stack.url(name)))[0] for name in owners}
        held = {svc: sum(n for name, n in counts.items() if name.startswith(svc)) for svc in SCALED}
        if all(counts.values()) and all(n == PARTITIONS for n in held.values()):
            return counts
        if loop.time() > deadline:
            pytest.fail(f"partitions never settled among {owners}: {counts}")
        await asyncio.sleep(0.2)


async def test_instances_share_the_partitions_and_a_killed_ones_move_to_the_survivor(stack, client):
    scenarios = Scenarios(client, tag=f"scale-{uuid.uuid4().hex[:6]}")
    await scenarios.seed()
    customers = [scenarios.customer(n) for n in ("alice", "bob", "dave", "carol")]  # carol: poor
    extra: dict[str, str] = {}
    try:
        started = time.monotonic()
        for svc in SCALED:
            extra[svc] = await asyncio.to_thread(stack.start_instance, svc)
        ready = time.monotonic()
        async with httpx.AsyncClient(timeout=5.0) as http:
            everyone = [name for svc in SCALED for name in (svc, extra[svc])]
            before = await wait_assigned(http, stack, everyone)
            log.info(
                "instances ready in %.1f s, partitions shared %.1f s later: %s",
                ready - started,
                time.monotonic() - ready,
                before,
            )
            for svc in SCALED:
                mine, theirs = (logged_assignment(stack.log_path(n)) for n in (svc, extra[svc]))
                assert not mine & theirs, f"{svc}: both instances own {mine & theirs}"
                assert mine | theirs == set(range(PARTITIONS)), f"{svc}: {mine} + {theirs}"
            applied_before = {svc: (await scrape(http, stack.url(svc)))[1] for svc in SCALED}

            killed = asyncio.Event()

            async def burst() -> None:
                """Half the orders, then (once the kill is done) the other half, 0.1 s apart."""
                placed = []
                for i in range(ORDERS):
                    if i == ORDERS // 2:
                        await killed.wait()
                    order = place_until_accepted(
                        scenarios, customers[i % 4], [(scenarios.widget, 1)]
                    )
                    placed.append(asyncio.create_task(order))
                    await asyncio.sleep(0.1)
                await asyncio.gather(*placed)

            async def both_working() -> bool:
                applied = {name: (await scrape(http, stack.url(name)))[1] for name in everyone}
                return all(
                    applied[svc] > applied_before[svc] and applied[extra[svc]] > 0 for svc in SCALED
                )

            placing = asyncio.create_task(burst())
            try:
                await client.wait_for(both_working, timeout=20, interval=0.1)
                for svc in SCALED:
                    await asyncio.to_thread(stack.kill, extra[svc])
                killed_at = time.monotonic()
                killed.set()
                after = await wait_assigned(http, stack, list(SCALED))
                moved_in = time.monotonic() - killed_at
                await placing
            finally:
                placing.cancel()  # when something above failed: no burst waiting for a kill
        log.info("partitions after the kill: %s, moved in %.1f s", after, moved_in)

        assert len(scenarios.orders) == ORDERS
        # One at a time: forty pollers at once would trip the order service's overload limit.
        orders = [await scenarios.wait_for_history(order_id) for order_id in scenarios.orders]
        for order in orders:
            assert order["status"] in TERMINAL and history_complete(order), order
            if order["customer_id"] == scenarios.customer("carol"):
                assert order["status"] == "CANCELLED", order
        for order_id in scenarios.orders:
            kinds = [payment["kind"] for payment in await client.payments(order_id)]
            assert kinds.count("charge") <= 1 and kinds.count("refund") <= 1, (order_id, kinds)
        log.info("outcomes: %s", Counter((o["status"], o["reason"]) for o in orders))
        assert (await settle(client, timeout=60)).violations == []
        log.info("settled %.1f s after the start", time.monotonic() - started)
    finally:
        for name in extra.values():
            await asyncio.to_thread(stack.stop_service, name)  # nothing left to do if killed
