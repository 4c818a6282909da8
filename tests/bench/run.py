"""The saga benchmark (`make bench`): end-to-end throughput and latency on a fresh stack.

For each mode it starts a fresh local stack (three PostgreSQL servers, the broker, the
three services), or with `--running` uses the stack whose services answer where
`make invariants` looks (`<SVC>_URL`, else the local ports `make up` and docker-compose
use), seeds products and accounts that never run out, then runs the load generator
(`loadgen.py`, a process of its own) for a warm-up and a measured window:

- `flat`: `--concurrency` clients, each placing an order as soon as the last was answered;
  by default as many as the order service serves at once (its in-flight limit, times
  its processes with `--instances order=N`): more would be refused, fewer would leave
  its intake's batches smaller;
- `rate`: an open loop at `--rate` orders per second.

Sagas are timed by the order service itself: placed is the `OrderCreated` step of the
order's history, terminal its first decision (`OrderConfirmed` or `OrderCancelled`);
the legs of a confirmed saga (`STEPS`) come from the same history and payment's charge.
The result, per mode, is `bench/results/<mode>-<time>.json` and a plot beside it: orders
accepted and sagas completed per second, latency placed -> terminal (p50/p95/p99/max)
and of each leg, the HTTP latency of placing an order, the share of each outcome, CPU
milliseconds per completed saga of every process (services, each PostgreSQL with its
backends, the broker, the load generator) and the cores each process of the stack used
in every 5 s of the window, the services' peak RSS, and the invariant check. A running
stack's processes are not the bench's to read (they may be containers, or on another
machine), so for one it reports the load generator's CPU only, and no RSS; and the
window is timed by this machine's clock and the sagas by the order service's, so the two
clocks must agree.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from chassis.settings import ServiceSettings
from devstack.client import Json, SagaClient
from devstack.invariants import settle
from devstack.latency import percentiles
from devstack.procfs import cpu_seconds, memory_bytes
from devstack.stack import SERVICES, Stack, service_urls

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
SKUS = [f"bench-{n}" for n in range(50)]
LOADGEN = "loadgen"
"""The load generator's name in the CPU figures, beside the stack's processes."""


def say(line: str) -> None:
    print(f"[bench] {line}", file=sys.stderr, flush=True)


# -- processes -----------------------------------------------------------------------


def processes(stack: Stack, instances: list[str]) -> dict[str, int]:
    """The pid of every process of the stack, by a name for the results."""
    pids = {svc: stack.pid(svc) for svc in [*SERVICES, *instances]}
    for svc in SERVICES:
        pid = stack.postgres(svc).pid
        assert pid is not None
        pids[f"postgres-{svc}"] = pid
    assert stack.broker.pid is not None
    pids["broker"] = stack.broker.pid
    return pids


# -- one run -------------------------------------------------------------------------


@dataclass
class Window:
    """The measured part of a run, in Unix time."""

    start: float
    end: float

    def __contains__(self, t: float) -> bool:
        return self.start <= t < self.end

    @property
    def seconds(self) -> float:
        return self.end - self.start


def customers(count: int) -> list[str]:
    """The customers orders are placed for, each with an account."""
    return [f"bench-c{n}" for n in range(count)]


async def seed(client: SagaClient, accounts: int) -> None:
    """Products and accounts that no run can exhaust: every order should be CONFIRMED."""
    for sku in SKUS:
        await client.put_product(sku, f"Bench item {sku}", 100, 10**9)
    names = customers(accounts)
    for start in range(0, len(names), 10):
        chunk = names[start : start + 10]
        await asyncio.gather(*(client.put_account(customer, 10**15) for customer in chunk))


def run_loadgen(
    urls: list[str], args: argparse.Namespace, mode: str, out: Path
) -> subprocess.Popen[bytes]:
    load = (
        ["--rate", str(args.rate)] if mode == "rate" else ["--concurrency", str(args.concurrency)]
    )
    command = [
        sys.executable,
        str(Path(__file__).with_name("loadgen.py")),
        *(f"--url={url}" for url in urls),
        f"--skus={','.join(SKUS)}",
        f"--customers={','.join(customers(args.accounts))}",
        f"--seconds={args.warmup + args.seconds}",
        f"--warmup={args.warmup}",
        *load,
        f"--out={out}",
    ]
    return subprocess.Popen(command, start_new_session=True)


@dataclass(frozen=True)
class Saga:
    """One order's saga as the services recorded it: Unix times, and its outcome."""

    placed: float
    decided: float
    outcome: str
    steps: dict[str, float]
    """For a confirmed order placed in the measured window, the seconds of each leg of its
    way (`STEPS`); else empty."""


STEPS = {
    "placed_to_charged": "placed -> payment's charging transaction began",
    "charged_to_payment_answer_applied": "that -> the order service applied PaymentSucceeded",
    "placed_to_stock_answer_applied": "placed -> the order service applied StockReserved",
    "placed_to_payment_answer_applied": "placed -> the order service applied PaymentSucceeded",
}
"""The legs of a confirmed saga, from the order's history and payment's charge: the
first is the order service's relay, the broker and payment's fetch; the second,
payment's transaction, its relay, the broker and the order service's fetch."""


async def timings(client: SagaClient, order_ids: list[str], window: Window) -> dict[str, Saga]:
    """Per order: its saga, from its history (and, if confirmed and placed in `window`,
    the legs, from its charge: only those are reported, so only those are asked for)."""
    found: dict[str, Saga] = {}
    gate = asyncio.Semaphore(16)

    async def one(order_id: str) -> None:
        async with gate:
            order = await client.order(order_id)
            at = {s["step"]: _unix(s["at"]) for s in reversed(order["history"])}
            placed = at["OrderCreated"]
            timed = order["status"] == "CONFIRMED" and placed in window
            payments = await client.payments(order_id) if timed else []
        decided = min(at[s] for s in ("OrderConfirmed", "OrderCancelled") if s in at)
        outcome = order["status"] + (f"/{order['reason']}" if order.get("reason") else "")
        steps = {}
        if timed:
            charged = min(_unix(p["created_at"]) for p in payments if p["kind"] == "charge")
            steps = {
                "placed_to_charged": charged - placed,
                "charged_to_payment_answer_applied": at["PaymentSucceeded"] - charged,
                "placed_to_stock_answer_applied": at["StockReserved"] - placed,
                "placed_to_payment_answer_applied": at["PaymentSucceeded"] - placed,
            }
        found[order_id] = Saga(placed, decided, outcome, steps)

    await asyncio.gather(*(one(order_id) for order_id in order_ids))
    return found


def _unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def wait_terminal(client: SagaClient, order_ids: list[str], timeout: float = 300) -> None:
    """Until none of `order_ids` is pending (on a running stack, other orders may be)."""
    ours = set(order_ids)

    async def done() -> bool:
        return not any(o["order_id"] in ours for o in await client.orders(status="PENDING"))

    await client.wait_for(done, timeout=timeout, interval=1.0)


async def run_mode(mode: str, args: argparse.Namespace, base: Path) -> dict[str, Any]:
    if args.running:
        urls = service_urls(os.environ)
        say(f"{mode}: using the running stack: " + ", ".join(f"{s} {u}" for s, u in urls.items()))
        async with SagaClient(urls, timeout=60) as client:
            try:
                await seed(client, args.accounts)
            except httpx.TransportError as exc:
                raise SystemExit(
                    f"[bench] no stack answers there ({exc!r}): start one with `make up` or"
                    " `docker compose up`, or set ORDER_URL, INVENTORY_URL and PAYMENT_URL"
                ) from exc
            return await measure(mode, args, base, client, [urls["order"]], pids={}, services=[])
    say(f"{mode}: starting a fresh stack")
    with Stack(
        base / mode,
        free_ports=True,
        progress=lambda line: say(f"  {line}"),
        database_proxies=list(args.db_latency),
        extra_env={"ORDER_MAX_PENDING_ORDERS": str(args.max_pending)} if args.max_pending else {},
    ) as stack:
        for svc, delay_ms in args.db_latency.items():
            stack.database_proxy(svc).slow(delay_ms)
        async with SagaClient({svc: stack.url(svc) for svc in SERVICES}, timeout=60) as client:
            await seed(client, args.accounts)
            added = {
                svc: [stack.start_instance(svc) for _ in range(count - 1)]
                for svc, count in args.instances.items()
            }
            instances = [name for names in added.values() for name in names]
            order = ["order", *added.get("order", [])]
            return await measure(
                mode,
                args,
                base,
                client,
                [stack.url(name) for name in order],
                pids=processes(stack, instances),
                services=[*SERVICES, *instances],
            )


async def measure(
    mode: str,
    args: argparse.Namespace,
    base: Path,
    client: SagaClient,
    order_urls: list[str],
    *,
    pids: dict[str, int],
    services: list[str],
) -> dict[str, Any]:
    """Load a seeded stack through `order_urls` for a warm-up and a window; the report.

    `pids` are the stack's processes whose CPU to read, by name, and `services` those of
    them whose RSS to read; both are empty for a running stack, whose processes are not
    the bench's.
    """
    answers_path = base / f"{mode}-answers.jsonl"
    started = time.time()
    loadgen = run_loadgen(order_urls, args, mode, answers_path)
    await asyncio.sleep(args.warmup)
    window_start = time.time()
    profilers = start_profilers(pids, args, base / mode) if args.profile else {}
    spent, cores = await cpu_over_time(pids, args.seconds)
    window = Window(window_start, time.time())
    profiles = {svc: await finish_profiler(*job) for svc, job in profilers.items()}
    if await asyncio.to_thread(loadgen.wait) != 0:
        raise RuntimeError(f"the load generator failed ({loadgen.returncode})")
    answers = [json.loads(line) for line in answers_path.read_text().splitlines()]
    loadgen_cpu = answers.pop()["loadgen"]["cpu_seconds_after_warmup"]
    accepted = [a for a in answers if a["status"] == 202]
    order_ids = [a["order_id"] for a in accepted]
    say(f"{mode}: load done, {len(accepted)} orders accepted; waiting for every saga to end")
    await wait_terminal(client, order_ids)
    sagas = await timings(client, order_ids, window)
    memory = {
        svc: {
            "rss_mb": round(memory_bytes(pids[svc], "VmRSS") / 2**20, 1),
            "peak_rss_mb": round(memory_bytes(pids[svc], "VmHWM") / 2**20, 1),
        }
        for svc in services
    }
    say(f"{mode}: checking the invariants")
    report = await settle(client, timeout=300)
    completed = [s for s in sagas.values() if s.decided in window]
    # The stack's processes, then the load generator's own count over its window.
    cpu = spent | {LOADGEN: loadgen_cpu}
    placed_in_window = [s for s in sagas.values() if s.placed in window]
    return {
        "mode": mode,
        "stack": "running" if args.running else "fresh",
        "load": {"rate": args.rate} if mode == "rate" else {"concurrency": args.concurrency},
        # A running stack's are not the bench's to set, so not known here.
        **(
            {}
            if args.running
            else {
                "instances": {svc: args.instances.get(svc, 1) for svc in SERVICES},
                "database_latency_ms": {svc: args.db_latency.get(svc, 0) for svc in SERVICES},
                "max_pending_orders": args.max_pending,
            }
        ),
        "seeded": {"products": len(SKUS), "accounts": args.accounts},
        "warmup_seconds": args.warmup,
        "window_seconds": round(window.seconds, 2),
        "run_started": datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "orders_accepted_per_second": round(
            sum(a["t"] in window for a in accepted) / window.seconds, 1
        ),
        "sagas_completed_per_second": round(len(completed) / window.seconds, 1),
        "saga_latency_ms": percentiles([s.decided - s.placed for s in placed_in_window]),
        "saga_steps_ms": {
            step: percentiles([s.steps[step] for s in placed_in_window if s.steps])
            for step in STEPS
        },
        "http_place_order_latency_ms": percentiles(
            [a["latency"] for a in accepted if a["t"] in window]
        ),
        "refused_answers": sum(a["status"] != 202 for a in answers),
        "outcomes": dict(Counter(s.outcome for s in placed_in_window)),
        "cpu_ms_per_completed_saga": {
            name: round(seconds / max(1, len(completed)) * 1000, 3) for name, seconds in cpu.items()
        },
        "cpu_utilisation_in_window": {
            name: round(seconds / window.seconds, 2) for name, seconds in cpu.items()
        },
        "memory": memory,
        "invariant_violations": report.violations,
        "orders_checked": sum(report.orders.values()),
        "series": series(accepted, sagas),
        "cpu_series": {"step_seconds": CPU_STEP_SECONDS, "cores": cores},
        **({"profile": profiles} if profiles else {}),
    }


CPU_STEP_SECONDS = 5.0


async def cpu_over_time(
    pids: dict[str, int], seconds: float
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Wait `seconds`; the CPU seconds each process spent in them, and the cores it used
    in every `CPU_STEP_SECONDS` of them.

    A process whose cost per saga changes over the run shows here: the local broker's
    grows with the history of its partitions (`tests/bench/broker.py`).
    """
    cores: dict[str, list[float]] = {name: [] for name in pids}
    first = before = {n: cpu_seconds(p) for n, p in pids.items()}
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        started = time.monotonic()
        await asyncio.sleep(min(CPU_STEP_SECONDS, left))
        now, elapsed = {n: cpu_seconds(p) for n, p in pids.items()}, time.monotonic() - started
        for name in pids:
            cores[name].append(round((now[name] - before[name]) / elapsed, 3))
        before = now
    return {name: before[name] - first[name] for name in pids}, cores


def start_profilers(
    pids: dict[str, int], args: argparse.Namespace, where: Path
) -> dict[str, tuple[subprocess.Popen[bytes], Path]]:
    """py-spy on each service for the measured window: 100 samples/s of busy threads."""
    jobs = {}
    for svc in SERVICES:
        out = where / f"{svc}.collapsed"
        command = [
            str(Path(sys.executable).with_name("py-spy")),
            "record",
            "--nonblocking",
            "--rate=100",
            f"--duration={int(args.seconds)}",
            "--format=raw",
            f"--output={out}",
            f"--pid={pids[svc]}",
        ]
        jobs[svc] = (
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            out,
        )
    return jobs


async def finish_profiler(profiler: subprocess.Popen[bytes], out: Path) -> dict[str, float]:
    """The functions that took the most of a service's busy samples, inclusive, in %."""
    await asyncio.to_thread(profiler.wait)
    inclusive: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        for frame in set(stack.split(";")):
            inclusive[frame.split(" (")[0] + " (" + frame.split(" (")[-1].split("/")[-1]] += int(
                count
            )
    return (
        {frame: round(100 * n / total, 1) for frame, n in inclusive.most_common(40)}
        if total
        else {}
    )


def series(accepted: list[Json], sagas: dict[str, Saga]) -> dict[str, Any]:
    """Per second of the run: orders accepted, sagas completed, latency of those placed."""
    if not sagas:
        return {}
    first = min(s.placed for s in sagas.values())
    seconds = int(max(s.decided for s in sagas.values()) - first) + 1
    accepted_at, completed_at = [0] * seconds, [0] * seconds
    latencies: list[list[float]] = [[] for _ in range(seconds)]
    for answer in accepted:
        accepted_at[min(seconds - 1, max(0, int(answer["t"] - first)))] += 1
    for saga in sagas.values():
        completed_at[int(saga.decided - first)] += 1
        latencies[int(saga.placed - first)].append(saga.decided - saga.placed)
    return {
        "accepted": accepted_at,
        "completed": completed_at,
        "p50_ms": [round(statistics.median(v) * 1000, 1) if v else None for v in latencies],
        "p99_ms": [
            round(max(v) * 1000 if len(v) < 100 else statistics.quantiles(v, n=100)[98] * 1000, 1)
            if v
            else None
            for v in latencies
        ],
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = result["series"]
    seconds = range(len(data["accepted"]))
    figure, (rates, latency, cpu) = plt.subplots(3, 1, sharex=True, figsize=(9, 8))
    rates.plot(seconds, data["accepted"], label="orders accepted / s")
    rates.plot(seconds, data["completed"], label="sagas completed / s")
    rates.axvline(result["warmup_seconds"], color="grey", linestyle=":", label="end of warm-up")
    rates.set_ylabel("per second")
    rates.legend()
    latency.plot(seconds, data["p50_ms"], label="p50")
    latency.plot(seconds, data["p99_ms"], label="p99 (max below 100 orders)")
    latency.set_ylabel("placed -> terminal (ms)")
    latency.legend()
    step, cores = result["cpu_series"]["step_seconds"], result["cpu_series"]["cores"]
    if cores:
        # Each value is the mean of the step that ends at its point.
        ends = [result["warmup_seconds"] + step * (n + 1) for n in range(len(cores["broker"]))]
        cpu.plot(ends, [sum(at) for at in zip(*cores.values(), strict=True)], label="the stack")
        cpu.plot(ends, cores["broker"], label="the broker")
        cpu.legend()
    else:
        cpu.text(0.5, 0.5, "not measured: a running stack", ha="center", transform=cpu.transAxes)
    cpu.set_ylabel("CPU in use (cores)")
    cpu.set_xlabel("seconds since the first order")
    load = ", ".join(f"{k} {v}" for k, v in result["load"].items())
    figure.suptitle(f"saga benchmark, {result['mode']} ({load})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def summary(result: dict[str, Any]) -> str:
    lat, http = result["saga_latency_ms"], result["http_place_order_latency_ms"]
    cpu_ms = dict(result["cpu_ms_per_completed_saga"])
    loadgen_ms = cpu_ms.pop(LOADGEN)
    unread = "not measured (a running stack)"
    cpu = ", ".join(f"{k} {v}" for k, v in cpu_ms.items()) or unread
    rss = ", ".join(f"{k} {v['peak_rss_mb']}" for k, v in result["memory"].items()) or unread
    stack = (
        "a running stack"
        if result["stack"] == "running"
        else f"instances {result['instances']}; database latency ms {result['database_latency_ms']}; max pending orders {result['max_pending_orders'] or 'default'}"
    )
    return "\n".join(
        [
            f"mode {result['mode']} {result['load']}, {result['window_seconds']} s measured after {result['warmup_seconds']} s warm-up",
            f"  {stack}",
            f"  accepted {result['orders_accepted_per_second']}/s, completed {result['sagas_completed_per_second']} sagas/s",
            f"  placed->terminal ms {lat}",
            *(
                f"    {STEPS[step]}: p50 / p99 {ms.get('p50')} / {ms.get('p99')} ms"
                for step, ms in result["saga_steps_ms"].items()
            ),
            f"  HTTP POST /v1/orders ms {http}",
            f"  outcomes {result['outcomes']}; refused answers {result['refused_answers']}",
            f"  CPU ms per completed saga: {cpu}",
            f"  load generator: {loadgen_ms} CPU ms per completed saga ({result['cpu_utilisation_in_window'][LOADGEN]:.0%} of a core)",
            f"  peak RSS MB: {rss}",
            f"  invariant violations: {len(result['invariant_violations'])} ({result['orders_checked']} orders checked)",
        ]
    )


async def main(args: argparse.Namespace) -> int:
    args.results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%dT%H%M%S")
    failed = False
    with tempfile.TemporaryDirectory(prefix="saga-bench-") as tmp:
        for mode in ("flat", "rate") if args.mode == "both" else (args.mode,):
            result = await run_mode(mode, args, Path(tmp))
            stem = args.results / f"{mode}-{stamp}"
            plot(result, stem.with_suffix(".png"))
            stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
            print(summary(result), flush=True)
            print(f"  written: {stem}.json and .png", flush=True)
            failed |= bool(result["invariant_violations"])
    return 1 if failed else 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["flat", "rate", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="open loop: orders/s")
    parser.add_argument(
        "--concurrency",
        type=int,
        help="flat out: clients (default: as many as the order service's processes serve at"
        " once, the in-flight limit times --instances order=N)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy each service in the window (costs CPU)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON and PNG go")
    parser.add_argument(
        "--instances",
        action="append",
        default=[],
        metavar="SVC=N",
        help="run N processes of a service in its consumer group, e.g. payment=2 (repeatable;"
        " the load is spread evenly over the order service's processes)",
    )
    parser.add_argument(
        "--db-latency",
        action="append",
        default=[],
        metavar="SVC=MS",
        help="put a service's database MS milliseconds away: every round trip of every"
        " instance to it waits that long (a proxy in between; repeatable)",
    )
    parser.add_argument(
        "--accounts",
        type=int,
        default=1000,
        metavar="N",
        help="customers with an account (default 1000): a charge locks its customer's"
        " account, so with few customers payment instances wait on each other's locks",
    )
    parser.add_argument(
        "--running",
        action="store_true",
        help="use the stack that is running (`make up`, or docker-compose with Apache Kafka)"
        " where `make invariants` looks: <SVC>_URL, else the local ports; the stack's CPU"
        " and RSS are then not measured",
    )
    parser.add_argument(
        "--max-pending",
        type=int,
        metavar="N",
        help="the order service's saga backlog bound (ORDER_MAX_PENDING_ORDERS; default"
        " the service's): flat out, the wait in the queue is N / throughput, so keep it"
        " well under the saga timeout",
    )
    args = parser.parse_args(argv)
    for option, value in (
        ("--max-pending", args.max_pending),
        ("--accounts", args.accounts),
        ("--concurrency", args.concurrency),
    ):
        if value is not None and value < 1:
            parser.error(f"{option} {value}: must be >= 1")
    if args.running:
        for option, value in (
            ("--instances", args.instances),
            ("--db-latency", args.db_latency),
            ("--max-pending", args.max_pending),
            ("--profile", args.profile),
        ):
            if value:
                parser.error(f"{option} needs a stack the bench starts; not with --running")
    args.instances = dict(per_service(parser, "--instances", spec, 1) for spec in args.instances)
    args.db_latency = dict(per_service(parser, "--db-latency", spec, 0) for spec in args.db_latency)
    if args.concurrency is None:
        limit = ServiceSettings.model_fields["max_concurrent_requests"].default
        args.concurrency = limit * args.instances.get("order", 1)
    return args


def per_service(
    parser: argparse.ArgumentParser, option: str, spec: str, least: int
) -> tuple[str, int]:
    """`payment=2` as `("payment", 2)`, or exit with a message saying what is wrong."""
    svc, _, count = spec.partition("=")
    if svc not in SERVICES or not count.isdigit() or int(count) < least:
        parser.error(
            f"{option} {spec!r}: expected SVC=N with SVC one of {', '.join(SERVICES)}"
            f" and N >= {least}"
        )
    return svc, int(count)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
