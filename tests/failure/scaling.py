"""Consumer scaling under load: second instances join their groups, then die."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared_contracts import Topic

from .harness import ChaosRun, Fault

TOPIC = Topic.ORDER_EVENTS
"""What payment and inventory consume."""
PARTITIONS = 6
"""Partitions of every topic, as the launcher creates them."""
SCALED = ("payment", "inventory")
REBALANCE_SECONDS = 60.0
"""How long the partitions may take to settle after a member joins or dies."""


async def sample(http: httpx.AsyncClient, url: str, name: str) -> float:
    """A metric of a process for TOPIC, summed over its other labels (0 if absent)."""
    response = await http.get(f"{url}/metrics")
    response.raise_for_status()
    return sum(
        point.value
        for family in text_string_to_metric_families(response.text)
        for point in family.samples
        if point.name == name and point.labels.get("topic") == TOPIC
    )


class ScaleOutAndKill(Fault):
    """A second payment and inventory join mid-load; later one instance of each is SIGKILLed."""

    key = "scale-out"
    name = "second instances join, then one of each SIGKILLed"
    description = (
        "A second payment and a second inventory process start at 10% of the load and "
        f"join their consumer groups, which split the {PARTITIONS} partitions of "
        f"{TOPIC} between two instances each; at 60% the second instances are SIGKILLed, "
        "and their partitions move to the first ones once the group's 6 s session "
        "timeout has passed. Nothing may be lost or applied twice."
    )

    def __init__(self) -> None:
        self.extra: dict[str, str] = {}
        """Service -> the name of its second instance."""
        self.problems: list[str] = []

    @contextlib.asynccontextmanager
    async def around(self, run: ChaosRun) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # Already killed unless `during` failed before: then they must not outlive the run.
            for name in self.extra.values():
                await asyncio.to_thread(run.stack.stop_service, name)

    async def during(self, run: ChaosRun) -> None:
        await run.at(0.1)
        for svc in SCALED:
            self.extra[svc] = await asyncio.to_thread(run.stack.start_instance, svc)
            run.say(f"{self.extra[svc]} started")
        everyone = [name for svc in SCALED for name in (svc, self.extra[svc])]
        async with httpx.AsyncClient(timeout=5.0) as http:
            shared = await self._settled(http, run, everyone)
            run.say(f"partitions shared: {shared}")
            await run.at(0.6)
            applied = await self._working(http, run)
            for name in self.extra.values():
                await run.kill(name)
            killed_at = time.monotonic()
            alone = await self._settled(http, run, list(SCALED))
            moved_in = time.monotonic() - killed_at
            run.say(f"partitions after the kill: {alone}, moved in {moved_in:.1f} s")
        run.notes["partitions per instance, shared"] = shared
        run.notes["partitions per instance, after the kill"] = alone
        run.notes["partitions moved in (s)"] = round(moved_in, 1)
        run.notes["events applied by the killed instances"] = applied
        self.problems += [
            f"{name} applied no event before it was killed" for name, n in applied.items() if not n
        ]

    async def _working(self, http: httpx.AsyncClient, run: ChaosRun) -> dict[str, float]:
        """The events each second instance applied, once each has applied one (or 30 s passed)."""
        deadline = time.monotonic() + 30.0
        while True:
            applied = {
                name: await sample(http, run.stack.url(name), "events_consumed_total")
                for name in self.extra.values()
            }
            if all(applied.values()) or time.monotonic() > deadline:
                return applied
            await asyncio.sleep(0.2)

    async def _settled(
        self, http: httpx.AsyncClient, run: ChaosRun, owners: list[str]
    ) -> dict[str, int]:
        """Wait until each of `owners` has partitions and together they hold all, per service."""
        deadline = time.monotonic() + REBALANCE_SECONDS
        while True:
            counts = {
                name: int(await sample(http, run.stack.url(name), "consumer_assigned_partitions"))
                for name in owners
            }
            held = {
                svc: sum(n for name, n in counts.items() if name.startswith(svc)) for svc in SCALED
            }
            if all(counts.values()) and all(n == PARTITIONS for n in held.values()):
                return counts
            if time.monotonic() > deadline:
                self.problems.append(f"partitions never settled among {owners}: {counts}")
                return counts
            await asyncio.sleep(0.2)

    async def after(self, run: ChaosRun) -> list[str]:  # noqa: ARG002
        return self.problems
