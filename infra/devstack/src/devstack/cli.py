"""`python -m devstack up`: run the local system in the foreground until Ctrl-C.

`python -m devstack demo`: run the workshop scenarios on a fresh stack, then stop.

`python -m devstack invariants`: check a running stack's invariants over HTTP.

`python -m devstack dlq list|replay <topic>`: show or re-publish a dead-letter topic.

`python -m devstack scenario <name>`: run a workshop control on the stack of `up`.
"""

import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import httpx

from devstack import dlq, invariants, workshop
from devstack._aio import run_sync
from devstack.client import SagaClient
from devstack.demo import run_demo
from devstack.errors import DevstackError
from devstack.stack import SERVICES, Stack, discover_services, find_repo_root, service_urls


class _Shutdown(Exception):
    """Raised in the main thread by SIGTERM/SIGHUP, like KeyboardInterrupt is by SIGINT."""


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    # Ignore further signals so that a second Ctrl-C cannot cut the shutdown short
    # and leave a database or the broker running.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    raise _Shutdown(signal.Signals(signum).name)


def _progress(line: str) -> None:
    print(line, flush=True)


def up(fresh: bool, base: Path | None = None) -> int:
    """Start the stack in `base` (`.stack/` at the repo root) and block until a signal arrives."""
    root = find_repo_root()
    base = (base or root / ".stack").resolve()
    if fresh and base.exists():
        print(f"removing {base}", flush=True)
        shutil.rmtree(base)
    # The services write to .stack/logs/; read in a terminal (`tail -f`) when this runs
    # in one, as JSON lines otherwise. LOG_FORMAT set by the caller wins.
    os.environ.setdefault("LOG_FORMAT", "console" if sys.stdout.isatty() else "json")
    # Trace ids only exist where tracing is on: without an OTLP endpoint, the services
    # write their spans to .stack/traces/, so that the console can show each order's.
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        os.environ.setdefault("TRACES_DIR", str(base / "traces"))
    # The console's Kafka client logs every failed reconnect while the broker is stopped
    # (a workshop control); the console shows the broker as down instead.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    console_port = workshop.console_port(os.environ)
    workshop.check_console_port(console_port)
    # Every service in services/, the saga's three and any made from the template since.
    # The saga's services reach the broker through a fault proxy, which only forwards
    # until a workshop control slows one down.
    services = discover_services(root)
    stack = Stack(
        base,
        repo_root=root,
        services=services,
        fault_proxies=[svc for svc in SERVICES if svc in services],
        progress=_progress,
    )
    try:
        with stack, workshop.serve_console(stack, console_port) as console:
            print("\nthe stack is up:", flush=True)
            print(f"  {'console':<10} {console.url}", flush=True)
            for svc in stack.services:
                print(f"  {svc:<10} {stack.url(svc)}", flush=True)
            print(f"  {'broker':<10} {stack.bootstrap_servers}", flush=True)
            print("press Ctrl-C to stop\n", flush=True)
            threading.Event().wait()
    except (KeyboardInterrupt, _Shutdown):
        print("stopped", flush=True)
    return 0


def dlq_list(bootstrap: str, topic: str) -> int:
    """Print one line per record of the DLQ of `topic`, then a count."""
    name = dlq.dlq_topic(topic)
    letters = run_sync(dlq.list_dead_letters(bootstrap, topic))
    for letter in letters:
        print(letter.describe(), flush=True)
    print(f"{len(letters)} dead-lettered record(s) in {name}", flush=True)
    return 0


def dlq_replay(bootstrap: str, topic: str, consumer: str | None, dry_run: bool) -> int:
    """Re-publish the DLQ's records not replayed yet, printing each, then a count."""
    verb = "would replay" if dry_run else "replayed"

    def report(done: dlq.Replayed) -> None:
        print(f"{verb} {done.describe()}", flush=True)

    result = run_sync(
        dlq.replay_dead_letters(
            bootstrap, topic, consumer_name=consumer, dry_run=dry_run, progress=report
        )
    )
    summary = f"{verb} {len(result.replayed)} record(s) from {result.dlq}"
    if result.left_out:
        summary += f"; {result.left_out} left out by --consumer {consumer}"
    if dry_run:
        summary += " (dry run: nothing published, progress not recorded)"
    print(summary, flush=True)
    return 0


def _add_dlq_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("topic", help="a topic (orders.events) or its DLQ (orders.events.dlq)")
    common.add_argument(
        "--bootstrap",
        default=None,
        help=f"broker address (default: ${dlq.BOOTSTRAP_ENV} or {dlq.DEFAULT_BOOTSTRAP})",
    )
    dlq_parser = commands.add_parser("dlq", help="list or replay a dead-letter topic")
    actions = dlq_parser.add_subparsers(dest="action", required=True)
    actions.add_parser(
        "list",
        parents=[common],
        help="print every dead-lettered record and why (reads without committing)",
    )
    replay = actions.add_parser(
        "replay",
        parents=[common],
        help="re-publish records not replayed yet to their original topic",
    )
    replay.add_argument("--consumer", help="only records dead-lettered by this consumer group")
    replay.add_argument(
        "--dry-run", action="store_true", help="show what would be replayed; publish nothing"
    )


def check_invariants(settle_seconds: float) -> int:
    """Check the invariants of a running stack over HTTP; 1 if any is broken."""
    urls = service_urls(os.environ)
    print("checking " + ", ".join(f"{svc} {url}" for svc, url in urls.items()), flush=True)

    async def run() -> invariants.Report:
        async with SagaClient(urls) as client:
            return await invariants.settle(client, settle_seconds)

    try:
        report = asyncio.run(run())
    except httpx.HTTPError as exc:
        raise DevstackError(f"cannot read the services' APIs: {exc!r}; is the stack up?") from exc
    for line in invariants.summary(report):
        print(line, flush=True)
    return 1 if report.violations else 0


def scenario(name: str | None) -> int:
    """Run the workshop control `name` on the stack of `make up`, through its console."""
    names = [control.name for control in workshop.CONTROLS]
    if name not in names:
        problem = f"unknown scenario {name!r}" if name else "say which scenario to run"
        print(f"error: {problem}; make scenario NAME=... with one of:", file=sys.stderr)
        for control in workshop.CONTROLS:
            print(f"  {control.name:<18} {control.help}", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{workshop.console_port(os.environ)}/api/controls/{name}"
    try:
        # Long enough for a service to be stopped and started again.
        response = httpx.post(url, timeout=120.0)
    except httpx.TransportError as exc:
        raise DevstackError(
            f"no stack is running: nothing answers at {url} ({type(exc).__name__}); "
            f"start one with `make up` (or set {workshop.CONSOLE_PORT_ENV} to its console's port)"
        ) from exc
    body = response.json()
    print(f"{name}: {body.get('message', body)}", flush=True)
    # The ids, for `curl localhost:8001/v1/orders/<order_id>`; the console shows them too.
    for order_id in body.get("order_ids", []):
        print(f"  order {order_id}", flush=True)
    return 0 if response.status_code == 200 else 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "up":
        return up(args.fresh, args.dir)
    if args.command == "demo":
        return run_demo()
    if args.command == "invariants":
        return check_invariants(args.settle)
    if args.command == "scenario":
        return scenario(args.name)
    # aiokafka logs each failed connection attempt; the failure is reported as one line.
    logging.getLogger("aiokafka").addHandler(logging.NullHandler())
    bootstrap = args.bootstrap or dlq.default_bootstrap()
    if args.action == "list":
        return dlq_list(bootstrap, args.topic)
    return dlq_replay(bootstrap, args.topic, args.consumer, args.dry_run)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the command, and turn known failures into `error: ...`."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start everything in the foreground")
    up_parser.add_argument("--fresh", action="store_true", help="wipe .stack/ first")
    up_parser.add_argument(
        "--dir", type=Path, default=None, help="keep data and logs here instead of .stack/"
    )
    commands.add_parser("demo", help="run the workshop scenarios on a fresh stack, then stop")
    check = commands.add_parser(
        "invariants", help="check a running stack's invariants over HTTP (exit 1 on a violation)"
    )
    check.add_argument(
        "--settle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep checking up to this long while events are still in flight",
    )
    _add_dlq_commands(commands)
    run = commands.add_parser(
        "scenario", help="run a workshop control on the stack of `up` (no name: list them)"
    )
    run.add_argument("name", nargs="?", help="e.g. place-order; leave out to list them all")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        return _run(args)
    except (KeyboardInterrupt, _Shutdown):
        return 0
    except DevstackError as exc:
        where = f" (log: {exc.log_path})" if exc.log_path else ""
        print(f"error: {exc.message}{where}", file=sys.stderr, flush=True)
        return 1
