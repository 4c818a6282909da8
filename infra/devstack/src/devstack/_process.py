"""Helpers for the child processes the launcher owns: stopping them and reading their logs."""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


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
) -> int:
    """Send `sig` to the process, wait up to `timeout` s, then SIGKILL its whole group.

    Returns the exit status: negative (-9) when it had to be killed.

    Only the leader gets the polite signal: it shuts its own helpers down in order
    (PostgreSQL's postmaster does), and signalling them directly could disturb that.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    # Anything the leader left behind in its group goes too.
    _signal_group(proc.pid, signal.SIGKILL)
    _wait_group_gone(proc.pid, 2.0)
    return proc.returncode


def kill_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and its whole group at once, as a crash would, and reap it."""
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_group_gone(proc.pid, 2.0)


def run(
    args: Sequence[str], *, input: str | None = None, capture: bool = True, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """Like `subprocess.run` in text mode, but in a new session whose whole group is
    killed if we are interrupted.

    initdb forks a `postgres --single` that plain `subprocess.run` would leave running
    when a Ctrl-C or SIGTERM aborts the launcher mid-step.
    """
    popen["stdin"] = subprocess.PIPE if input is not None else subprocess.DEVNULL
    if capture:
        popen.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with subprocess.Popen(args, start_new_session=True, text=True, **popen) as proc:
        try:
            stdout, stderr = proc.communicate(input)
        except BaseException:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
