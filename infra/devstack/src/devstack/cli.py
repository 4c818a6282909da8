"""`python -m devstack up`: run the local system in the foreground until Ctrl-C.

`python -m devstack demo`: run the workshop scenarios on a fresh stack, then stop.
"""

import argparse
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from devstack.demo import run_demo
from devstack.errors import DevstackError
from devstack.stack import Stack, find_repo_root


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


def up(fresh: bool) -> int:
    """Start the stack in `.stack/` at the repo root and block until a signal arrives."""
    base = find_repo_root() / ".stack"
    if fresh and base.exists():
        print(f"removing {base}", flush=True)
        shutil.rmtree(base)
    stack = Stack(base, progress=_progress)
    try:
        with stack:
            print("\nthe stack is up:", flush=True)
            for svc in stack.services:
                print(f"  {svc:<10} {stack.url(svc)}", flush=True)
            print(f"  {'broker':<10} {stack.bootstrap_servers}", flush=True)
            print("press Ctrl-C to stop\n", flush=True)
            threading.Event().wait()
    except (KeyboardInterrupt, _Shutdown):
        print("stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the command, and turn known failures into `error: ...`."""
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start everything in the foreground")
    up_parser.add_argument("--fresh", action="store_true", help="wipe .stack/ first")
    commands.add_parser("demo", help="run the workshop scenarios on a fresh stack, then stop")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        return up(args.fresh) if args.command == "up" else run_demo()
    except (KeyboardInterrupt, _Shutdown):
        return 0
    except DevstackError as exc:
        where = f" (log: {exc.log_path})" if exc.log_path else ""
        print(f"error: {exc.message}{where}", file=sys.stderr, flush=True)
        return 1
