"""The faults the chaos scenarios inject (see `harness.Fault`)."""

import asyncio
import contextlib
import json
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from chassis.kafka import create_producer
from chassis.outbox import new_envelope
from devstack.dlq import list_dead_letters
from devstack.invariants import check
from devstack.stack import SERVICES
from shared_contracts import Topic
from shared_contracts.order.v1 import OrderConfirmed

from .harness import SAGA_TIMEOUT_SECONDS, ChaosRun, Fault, read_histories

CLEAN_EXIT = "Application shutdown complete."
"""What uvicorn logs at the end of a graceful shutdown."""

CONSUMERS: dict[Topic, frozenset[str]] = {
    Topic.ORDER_EVENTS: frozenset({"payment", "inventory"}),
    Topic.PAYMENT_EVENTS: frozenset({"order"}),
    Topic.INVENTORY_EVENTS: frozenset({"order"}),
    Topic.PRODUCT_EVENTS: frozenset({"order"}),
}
"""The consumer groups of each main topic: who dead-letters what is published on it."""


class KillRestart(Fault):
    """Each service SIGKILLed `rounds` times at random moments, then restarted."""

    key = "kill"
    name = "SIGKILL and restart"
    description = (
        "Each service SIGKILLed twice at random moments in the first 60% of the load "
        "(moments and downtimes drawn from the seed; services independently, so two "
        "may be down at once), restarted after 0.5-3 s."
    )

    def __init__(self, rounds: int = 2, last_kill: float = 0.6) -> None:
        self.rounds = rounds
        self.last_kill = last_kill

    async def during(self, run: ChaosRun) -> None:
        # Each service has its own schedule, so two may be down at once.
        plans = {
            svc: sorted(run.rng.uniform(0.05, self.last_kill) for _ in range(self.rounds))
            for svc in SERVICES
        }
        downtimes = {
            svc: [run.rng.uniform(0.5, 3.0) for _ in moments] for svc, moments in plans.items()
        }
        restarts = await asyncio.gather(
            *(self._victim(run, svc, plans[svc], downtimes[svc]) for svc in SERVICES)
        )
        run.notes["kills"] = self.rounds * len(SERVICES)
        run.notes["slowest restart (s)"] = round(max(t for ts in restarts for t in ts), 1)

    async def _victim(
        self, run: ChaosRun, svc: str, moments: list[float], downtimes: list[float]
    ) -> list[float]:
        restarts = []
        for moment, downtime in zip(moments, downtimes, strict=True):
            await run.at(moment)  # at once if the last restart overran this moment
            await run.kill(svc)
            await asyncio.sleep(downtime)
            restarts.append(await run.restart(svc))
        return restarts


class ServiceDownPastTimeout(Fault):
    """A service stopped for longer than the saga timeout, then restarted."""

    key = "down-past-timeout"
    name = "payment down past the saga timeout"
    description = (
        f"Payment stopped for {SAGA_TIMEOUT_SECONDS + 6} s (saga timeout "
        f"{SAGA_TIMEOUT_SECONDS} s) mid-load, then restarted: orders time out and are "
        "compensated; the late payment results change no order."
    )

    def __init__(self, svc: str = "payment") -> None:
        self.svc = svc

    async def during(self, run: ChaosRun) -> None:
        await run.at(0.2)
        status = await asyncio.to_thread(run.stack.stop_service, self.svc)
        run.say(f"{self.svc} stopped (exit {status})")
        await asyncio.sleep(SAGA_TIMEOUT_SECONDS + 6)
        await run.restart(self.svc)

    async def after(self, run: ChaosRun) -> list[str]:
        timed_out = [o for o in run.orders.values() if o["reason"] == "TIMEOUT"]
        late = [
            o
            for o in timed_out
            if any(entry.get("late") for entry in o["history"] if entry["step"] != "OrderCreated")
        ]
        run.notes["cancelled by TIMEOUT"] = len(timed_out)
        run.notes["of which got late results"] = len(late)
        problems = []
        if not timed_out:
            problems.append(f"no order timed out while {self.svc} was down")
        if timed_out and not late:
            problems.append("no late result arrived after a timeout: the fault did not bite")
        return problems


class Duplicator:
    """Consumes every main topic in its own group and re-publishes each record once more.

    The copy has the same key, value and partition, and its headers plus
    `chaos.duplicate`, and goes out after a random delay of 0-`max_delay` s: consumers
    see every event twice, the copies late and out of order between topics.
    """

    HEADER = "chaos.duplicate"

    def __init__(self, bootstrap: str, seed: int, max_delay: float = 2.0) -> None:
        self.bootstrap = bootstrap
        self.rng = random.Random(seed)
        self.max_delay = max_delay
        self.seen = 0
        self.duplicated = 0
        self.last_seen = time.monotonic()
        self._pending: set[asyncio.Task[None]] = set()
        self._consumer = AIOKafkaConsumer(
            *(topic.value for topic in Topic),
            bootstrap_servers=bootstrap,
            group_id=f"chaos-duplicator-{uuid.uuid4().hex[:6]}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        self._producer: AIOKafkaProducer = create_producer(bootstrap)

    async def run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    if any(name == self.HEADER for name, _ in record.headers):
                        continue
                    self.seen += 1
                    self.last_seen = time.monotonic()
                    task = asyncio.create_task(self._again(record))
                    self._pending.add(task)
                    task.add_done_callback(self._pending.discard)

    async def _again(self, record: ConsumerRecord[bytes, bytes]) -> None:
        await asyncio.sleep(self.rng.uniform(0.0, self.max_delay))
        await self._producer.send_and_wait(
            record.topic,
            record.value,
            key=record.key,
            partition=record.partition,
            headers=[*record.headers, (self.HEADER, b"1")],
        )
        self.duplicated += 1

    async def quiet(self, seconds: float, timeout: float) -> bool:
        """Wait until nothing new came for `seconds` and every copy went out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._pending and time.monotonic() - self.last_seen >= seconds:
                return True
            await asyncio.sleep(0.2)
        return False

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator["Duplicator"]:
        await self._producer.start()
        try:
            await self._consumer.start()
            try:
                task = asyncio.create_task(self.run())
                try:
                    yield self
                finally:
                    task.cancel()
                    for pending in [task, *self._pending]:
                        pending.cancel()
                    await asyncio.gather(task, *self._pending, return_exceptions=True)
            finally:
                await self._consumer.stop()
        finally:
            await self._producer.stop()


class DuplicateAndDelay(Fault):
    """Every event delivered twice, the copies late and out of order between topics."""

    key = "duplicates"
    name = "duplicates, late and out of order"
    description = (
        "An injector consumes all four main topics and re-publishes every record (same "
        "key, partition and bytes) after a random 0-2 s delay: every event arrives twice, "
        "copies late and reordered across topics."
    )

    def __init__(self) -> None:
        self.duplicator: Duplicator | None = None

    @contextlib.asynccontextmanager
    async def around(self, run: ChaosRun) -> AsyncIterator[None]:
        async with Duplicator(run.stack.bootstrap_servers, run.seed).running() as duplicator:
            self.duplicator = duplicator
            yield
            # Settled: let the last copies go out, so the final check sees them applied.
            quiet = await duplicator.quiet(seconds=3.0, timeout=60.0)
            run.notes["events seen"] = duplicator.seen
            run.notes["copies injected"] = duplicator.duplicated
            if not quiet:
                run.notes["injector still busy at the end"] = True

    async def after(self, run: ChaosRun) -> list[str]:
        assert self.duplicator is not None
        await self.duplicator.quiet(seconds=3.0, timeout=60.0)
        report = await check(run.client)
        problems = [f"after the last copies: {v}" for v in report.violations]
        # An event applied twice would show as a repeated step in an order's history
        # (a decision sent again, should an answer be slow, is recorded each time).
        for order in (await _histories(run)).values():
            steps = [entry["step"] for entry in order["history"]]
            repeated = sorted({s for s in steps if steps.count(s) > 1} - {"DecisionResent"})
            if repeated:
                problems.append(f"order {order['order_id']}: steps applied twice: {repeated}")
        if self.duplicator.duplicated < self.duplicator.seen:
            problems.append(
                f"only {self.duplicator.duplicated} of {self.duplicator.seen} events duplicated"
            )
        return problems


async def _histories(run: ChaosRun) -> dict[str, Any]:
    return await read_histories(run.client, list(run.orders))


def poisons(seq: int) -> dict[str, bytes]:
    """One of each kind of message a consumer can never apply."""
    good = new_envelope("chaos", f"poison-{seq}", OrderConfirmed(order_id=uuid.uuid4()))
    return {
        "not JSON": b"\xff\x00 this is not json " + str(seq).encode(),
        "wrong shape": json.dumps({"hello": "world", "seq": seq}).encode(),
        "unknown event type": good.model_copy(update={"event_type": "OrderTeleported"})
        .model_dump_json()
        .encode(),
        "future version": good.model_copy(update={"event_version": 99}).model_dump_json().encode(),
    }


class Poison(Fault):
    """Poison messages of every kind on every main topic, in waves during the load."""

    key = "poison"
    name = "poison messages"
    description = (
        "Three waves (at 20%, 50% and 80% of the load) of four poisons on each of the four "
        "main topics: bytes that are not JSON, JSON of the wrong shape, an unknown "
        "event_type, a future event_version. Each must reach <topic>.dlq with dlq.reason "
        "from every consumer of the topic while orders keep completing."
    )

    def __init__(self, waves: tuple[float, ...] = (0.2, 0.5, 0.8)) -> None:
        self.waves = waves
        self.sent: dict[str, tuple[Topic, str]] = {}
        """Poison key -> (topic, kind)."""
        self.last_wave_at = 0.0

    async def during(self, run: ChaosRun) -> None:
        producer: AIOKafkaProducer = create_producer(run.stack.bootstrap_servers)
        await producer.start()
        try:
            for wave, moment in enumerate(self.waves):
                await run.at(moment)
                for topic in CONSUMERS:
                    for kind, value in poisons(wave).items():
                        key = f"poison-{wave}-{uuid.uuid4().hex[:8]}"
                        self.sent[key] = (topic, kind)
                        await producer.send_and_wait(topic, value, key=key.encode())
                self.last_wave_at = run.driver.now()
                run.say(f"poison wave {wave + 1}: {len(CONSUMERS) * 4} messages")
        finally:
            await producer.stop()

    async def after(self, run: ChaosRun) -> list[str]:
        bootstrap = run.stack.bootstrap_servers
        found: dict[str, set[str]] = {key: set() for key in self.sent}
        unexplained: list[str] = []
        deadline = time.monotonic() + 60
        while True:
            found = {key: set() for key in self.sent}
            unexplained = []
            for topic in CONSUMERS:
                for letter in await list_dead_letters(bootstrap, topic):
                    if letter.key_text not in found:
                        unexplained.append(letter.describe())
                        continue
                    if letter.original_topic != self.sent[letter.key_text][0]:
                        continue
                    if letter.consumer and letter.reason:
                        found[letter.key_text].add(letter.consumer)
            if all(found[k] >= CONSUMERS[t] for k, (t, _) in self.sent.items()):
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        problems = [
            f"{kind} on {topic}: dead-lettered by {sorted(found[key]) or 'nobody'}, "
            f"expected {sorted(CONSUMERS[topic])}"
            for key, (topic, kind) in self.sent.items()
            if not found[key] >= CONSUMERS[topic]
        ]
        problems += [f"a real event was dead-lettered: {line}" for line in unexplained[:10]]
        after_last = [p for p in run.driver.placed if p.accepted_at > self.last_wave_at]
        confirmed_after = sum(run.orders[p.order_id]["status"] == "CONFIRMED" for p in after_last)
        run.notes["poisons sent"] = len(self.sent)
        run.notes["dead letters (poison x consumer)"] = sum(len(v) for v in found.values())
        run.notes["orders after the last wave"] = len(after_last)
        run.notes["confirmed after the last wave"] = confirmed_after
        if not confirmed_after:
            problems.append("no order confirmed after the last poison wave")
        return problems


class GracefulShutdown(Fault):
    """SIGTERM each service in turn mid-load; it must stop cleanly and promptly."""

    key = "sigterm"
    name = "SIGTERM and restart"
    description = (
        "Each service in turn (order, inventory, payment) sent SIGTERM mid-load, "
        "restarted once it exited: it must exit gracefully (not SIGKILLed after the "
        f"10 s grace), within {8} s, and lose nothing."
    )

    MAX_STOP_SECONDS = 8.0

    def __init__(self) -> None:
        self.stops: list[tuple[str, int | None, float, bool]] = []

    async def during(self, run: ChaosRun) -> None:
        for svc, moment in zip(SERVICES, (0.2, 0.45, 0.7), strict=True):
            await run.at(moment)
            log = run.stack.log_path(svc)
            clean_before = log.read_text(errors="replace").count(CLEAN_EXIT)
            started = time.monotonic()
            status = await asyncio.to_thread(run.stack.stop_service, svc)
            took = time.monotonic() - started
            clean = log.read_text(errors="replace").count(CLEAN_EXIT) == clean_before + 1
            self.stops.append((svc, status, took, clean))
            run.say(f"SIGTERM {svc}: exit {status} after {took:.1f} s, clean shutdown: {clean}")
            await run.restart(svc)

    async def after(self, run: ChaosRun) -> list[str]:
        problems = []
        for svc, status, took, clean in self.stops:
            # uvicorn re-raises SIGTERM after its graceful shutdown: -15 is a clean exit.
            if status not in (0, -signal.SIGTERM):
                problems.append(f"{svc}: exit status {status} (killed, not a graceful stop)")
            if took > self.MAX_STOP_SECONDS:
                problems.append(f"{svc}: took {took:.1f} s to stop")
            if not clean:
                problems.append(f"{svc}: no '{CLEAN_EXIT}' in its log")
        run.notes["stops (service: exit, seconds)"] = {
            svc: f"{status}, {took:.1f}" for svc, status, took, _ in self.stops
        }
        return problems


class DatabaseOutage(Fault):
    """One service's PostgreSQL stopped for some seconds mid-load, then started again."""

    key = "db-outage"
    name = "inventory's database down"
    description = (
        "Inventory's PostgreSQL stopped for 5 s mid-load, then started again: inventory "
        "reports not ready and answers 503 meanwhile, and recovers by itself without a "
        "restart; order and payment keep working."
    )

    def __init__(self, svc: str = "inventory", seconds: float = 5.0) -> None:
        self.svc = svc
        self.seconds = seconds

    async def during(self, run: ChaosRun) -> None:
        await run.at(0.3)
        server = run.stack.postgres(self.svc)
        await asyncio.to_thread(server.stop)
        run.say(f"{self.svc}'s PostgreSQL stopped")
        ready = await run.client.request(self.svc, "GET", "/health/ready")
        run.notes["readiness during the outage"] = ready.status_code
        await asyncio.sleep(self.seconds)
        await asyncio.to_thread(server.start)
        started = time.monotonic()

        async def ready_again() -> bool:
            response = await run.client.request(self.svc, "GET", "/health/ready")
            return response.status_code == 200

        await run.client.wait_for(ready_again, timeout=60, interval=0.2)
        run.notes["ready again after (s)"] = round(time.monotonic() - started, 1)
        run.say(f"{self.svc}'s PostgreSQL started; {self.svc} ready again by itself")

    async def after(self, run: ChaosRun) -> list[str]:
        status = run.notes.get("readiness during the outage")
        return [] if status == 503 else [f"{self.svc} was ready ({status}) without its database"]


class BrokerRestart(Fault):
    """The broker stopped for some seconds mid-load, then started empty (it is in memory)."""

    key = "broker-restart"
    name = "broker down and restarted empty"
    description = (
        "The local broker stopped for 3 s mid-load and started again with nothing in it "
        "(Tansu keeps messages, consumer groups and offsets in memory). Orders are still "
        "accepted meanwhile (the outboxes grow); the services reconnect by themselves and "
        "drain their outboxes. Events acked by the broker but not yet consumed are lost: "
        "orders whose OrderCreated or results were lost end by the saga timeout, and "
        "decisions (OrderConfirmed, OrderCancelled) or their answers that were lost are "
        "made good by the order service sending the decision again until payment and "
        "inventory have answered it. With Apache Kafka acked events are not lost."
    )

    def __init__(self, seconds: float = 3.0) -> None:
        self.seconds = seconds

    async def during(self, run: ChaosRun) -> None:
        await run.at(0.3)
        await asyncio.to_thread(run.stack.broker.stop)
        run.say("broker stopped")
        await asyncio.sleep(self.seconds)
        await asyncio.to_thread(run.stack.restart_broker)
        run.say("broker started empty; topics re-created")
