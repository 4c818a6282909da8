"""Helpers for the child processes the launcher owns: stopping them and reading their logs."""

import os
import signal
import subprocess
import time
from pathlib import Path

DEFAULT_STOP_TIMEOUT = 15.0


def log_tail(path: Path, lines: int = 25) -> str:
    """Return the last `lines` lines of a log file, or a note when it is unreadable."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else f"({path} is empty)"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # Every child runs in its own session, so its process group holds it and the
    # helpers it forked (PostgreSQL backends) and nothing else of ours.
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)


def stop_process(
    proc: subprocess.Popen[bytes],
    sig: signal.Signals = signal.SIGTERM,
    timeout: float = DEFAULT_STOP_TIMEOUT,
) -> None:
    """Send `sig` to the process, wait up to `timeout` s, then SIGKILL its whole group.

    Only the leader gets the polite signal: it shuts its own helpers down in order
    (PostgreSQL's postmaster does), and signalling them directly could disturb that.
    """
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    # Anything the leader left behind in its group goes too.
    _signal_group(proc.pid, signal.SIGKILL)
    _wait_group_gone(proc.pid, 2.0)


def kill_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and its whole group at once, as a crash would, and reap it."""
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_group_gone(proc.pid, 2.0)
