"""`make compare`: the same workload against both designs, under each fault, measured.

For each design (the event-driven saga, then the distributed monolith, each on a fresh
system of its own, never both at once) and each fault, one *cell*:

1. seed a shop of the cell's own (`workload.Shop`: stock and funds that never run out,
   a rare item nobody can get enough of, a customer who cannot pay);
2. place `--rate` orders per second for `--seconds` s, open loop, drawn from
   `workload.MIX` with the same seed for both designs, one POST each, no retry;
3. meanwhile, the fault, always on payment: `none`; `down` (the payment process stopped
   at a third of the load and started again `--down-seconds` later); `slow` (every
   request to payment held `--delay-ms`, for the whole load); `fail` (`--fail-rate` of
   the requests to payment reset, for the whole load). "Requests to payment" are its
   Kafka requests for the saga and the HTTP calls the order app makes for the monolith:
   `devstack.faults` says exactly what the proxy does;
4. let the cell settle and count: orders succeeded, failed, still pending, left
   inconsistent (the saga: lines of `devstack.invariants` about the cell, once every
   saga is over; the monolith: orders whose order, charge and reservation records
   disagree), and latency (the saga: placed -> terminal from the order's own history;
   the monolith: the HTTP call, which is the whole order).

The result is a table on stdout, `bench/results/compare.json` and `compare.png`, and the
table in docs/comparison.md (between its markers).
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compare import report
from compare.designs import Design, EventDriven, Monolith
from compare.workload import HAPPY, MIX, Answer, Shop, open_loop
from devstack.latency import percentiles
from devstack.stack import find_repo_root

FAULTS = ("none", "down", "slow", "fail")
DESIGNS: dict[str, Callable[[Path, Callable[[str], None]], EventDriven | Monolith]] = {
    "saga": EventDriven,
    "monolith": Monolith,
}


def say(line: str) -> None:
    """A progress line on stderr, so stdout keeps only the table."""
    print(f"[compare] {line}", file=sys.stderr, flush=True)


def fault_label(fault: str, args: argparse.Namespace) -> str:
    return {
        "none": "no fault",
        "down": f"payment down {args.down_seconds:g} s",
        "slow": f"payment slowed by {args.delay_ms:g} ms",
        "fail": f"payment failing {args.fail_rate:.0%} of calls",
    }[fault]


async def inject(fault: str, design: Design, args: argparse.Namespace, log: list[str]) -> None:
    """Do the fault's damage; for `slow` and `fail`, only switch it on."""
    proxy = design.payment_proxy
    if fault == "slow":
        proxy.slow(args.delay_ms)
    elif fault == "fail":
        proxy.fail(args.fail_rate)
    elif fault == "down":
        await asyncio.sleep(args.seconds / 3)
        began = time.monotonic()
        await asyncio.to_thread(design.stop_payment)
        log.append(f"payment stopped at t={args.seconds / 3:.0f}s")
        await asyncio.sleep(max(0.0, args.down_seconds - (time.monotonic() - began)))
        await asyncio.to_thread(design.start_payment)
        log.append(
            f"payment started again, ready {time.monotonic() - began:.1f} s after it stopped"
        )


async def run_cell(
    design: Design, fault: str, number: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Seed, load with the fault, settle, count: one row of the table."""
    label = f"{design.name} / {fault_label(fault, args)}"
    shop = Shop(prefix=f"cell{number}")
    await design.seed(shop)
    orders = shop.orders(round(args.rate * args.seconds), seed=args.seed)
    say(f"{label}: {len(orders)} orders over {args.seconds:g} s")
    log: list[str] = []
    proxy_before = _proxy_counts(design)
    damage = asyncio.create_task(inject(fault, design, args, log))
    try:
        answers = await open_loop(design.place, orders, args.rate, lambda s: say(f"{label}: {s}"))
        await damage
    finally:
        design.payment_proxy.clear()
        damage.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await damage
    proxy = {k: v - proxy_before[k] for k, v in _proxy_counts(design).items()}
    say(f"{label}: load done, settling")
    began = time.monotonic()
    settled = await design.settle(shop, answers)
    row = count(design, answers, settled.status, settled.latency)
    row.update(
        design=design.name,
        fault=fault_label(fault, args),
        fault_key=fault,
        inconsistent=settled.inconsistent,
        inconsistencies=dict(settled.inconsistencies.most_common(20)),
        settle_seconds=round(time.monotonic() - began, 1),
        fault_log=log,
        proxy=proxy,
    )
    say(f"{label}: " + report.row_summary(row))
    return row


def _proxy_counts(design: Design) -> dict[str, int]:
    stats = design.payment_proxy.stats
    return {"requests": stats.requests, "delayed": stats.delayed, "reset": stats.reset}


def count(
    design: Design, answers: list[Answer], status: dict[str, str], saga_latency: dict[str, float]
) -> dict[str, Any]:
    """Placed, succeeded, failed, pending and latency of one cell, from its answers."""
    final = [status.get(a.order_id or "", "FAILED") for a in answers]
    succeeded = sum(s == "CONFIRMED" for s in final)
    pending = sum(s == "PENDING" for s in final)
    if saga_latency:
        latencies = [saga_latency[a.order_id] for a in answers if a.order_id in saga_latency]
    else:
        latencies = [a.latency for a in answers]
    return {
        "placed": len(answers),
        "succeeded": succeeded,
        "failed": len(answers) - succeeded - pending,
        "pending": pending,
        "lost_sales": sum(
            a.order.kind == HAPPY and s != "CONFIRMED" for a, s in zip(answers, final, strict=True)
        ),
        "by_kind": {
            kind: dict(
                Counter(s for a, s in zip(answers, final, strict=True) if a.order.kind == kind)
            )
            for kind in MIX
        },
        "answers": dict(Counter(str(a.status) for a in answers)),
        "taken": sum(a.status == design.success_status for a in answers),
        "latency_ms": percentiles(latencies, (50, 99)),
        "http_latency_ms": percentiles([a.latency for a in answers], (50, 99)),
    }


async def run_design(key: str, args: argparse.Namespace, base: Path) -> list[dict[str, Any]]:
    design = DESIGNS[key](base, lambda line: say(f"  {line}"))
    say(f"{design.name}: starting a fresh system")
    await asyncio.to_thread(design.start)
    rows = []
    try:
        for number, fault in enumerate(args.faults, start=1):
            rows.append(await run_cell(design, fault, number, args))
    finally:
        await design.close()
        await asyncio.to_thread(design.stop)
    return rows


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started, load_average = datetime.now(UTC), os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="saga-compare-") as tmp:
        for key in args.designs:
            rows += await run_design(key, args, Path(tmp))
    return {
        "started_at": started.isoformat(timespec="seconds"),
        "run_seconds": round((datetime.now(UTC) - started).total_seconds(), 1),
        "workload": {
            "rate_per_second": args.rate,
            "seconds_per_cell": args.seconds,
            "orders_per_cell": round(args.rate * args.seconds),
            "mix_percent": MIX,
            "seed": args.seed,
        },
        "faults": {key: fault_label(key, args) for key in args.faults},
        "machine": {
            "cpus": os.cpu_count(),
            # Other work on the machine makes latencies noisy: say how busy it was.
            "load_average_1min_at_start": round(load_average, 2),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "rows": rows,
    }


def parse(argv: list[str]) -> argparse.Namespace:
    repo = find_repo_root()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="load per cell")
    parser.add_argument("--rate", type=float, default=10.0, help="orders per second")
    parser.add_argument("--down-seconds", type=float, default=10.0)
    parser.add_argument("--delay-ms", type=float, default=200.0)
    parser.add_argument("--fail-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--faults", type=lambda s: s.split(","), default=list(FAULTS), help=",".join(FAULTS)
    )
    parser.add_argument(
        "--designs", type=lambda s: s.split(","), default=list(DESIGNS), help=",".join(DESIGNS)
    )
    parser.add_argument("--out", type=Path, default=repo / "bench" / "results" / "compare")
    parser.add_argument("--doc", type=Path, default=repo / "docs" / "comparison.md")
    parser.add_argument("--no-doc", action="store_true", help="leave the doc's table alone")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="run nothing: report a saved result again"
    )
    args = parser.parse_args(argv)
    if unknown := set(args.faults) - set(FAULTS) or set(args.designs) - set(DESIGNS):
        parser.error(f"unknown fault or design: {sorted(unknown)}")
    return args


def main(argv: list[str]) -> int:
    """Run every cell, print the table, write the JSON, the plot and the doc's table."""
    args = parse(argv)
    result = json.loads(args.render.read_text()) if args.render else asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    report.plot(result, args.out.with_suffix(".png"))
    table = report.table(result)
    print("\n".join(table), flush=True)
    written = [str(args.out.with_suffix(".json")), str(args.out.with_suffix(".png"))]
    if not args.no_doc:
        report.update_doc(args.doc, result)
        written.append(str(args.doc))
    say(f"done in {result['run_seconds']:.0f} s; written: {', '.join(written)}")
    return 0
