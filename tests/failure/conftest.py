"""Chaos scenarios: a fresh stack per test, results collected into docs/reliability.md.

These tests are marked `chaos` and left out of the default run (`addopts` has
`-m "not chaos"`); `make chaos` runs them. The soak (test_soak.py) is also marked
`soak` and runs only when `-m` names it (`make soak`), so that `make chaos` stays a
few minutes long. When any of them ran, the session's end writes
tests/failure/results/latest.json's rows into docs/reliability.md and prints a
summary table.
"""

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import Stack

from . import report
from .harness import SAGA_TIMEOUT_SECONDS

_ROWS = pytest.StashKey[list[dict[str, Any]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: a long steady load (make soak); runs only when -m names it"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the soak out unless `-m` names it: `-m chaos` alone must not take ten more minutes."""
    if "soak" in config.option.markexpr:
        return
    soaks = [item for item in items if item.get_closest_marker("soak")]
    if soaks:
        config.hook.pytest_deselected(items=soaks)
        items[:] = [item for item in items if item not in soaks]


@pytest.fixture
def chaos_stack(tmp_path: Path) -> Iterator[Stack]:
    """A fresh local stack on free ports for one scenario, stopped when the test ends.

    It lives in its own temporary directory, not under pytest's: as root, PostgreSQL
    runs as an unprivileged user that must be able to reach its data dir for as long
    as it runs (a configuration reload opens it by absolute path), and every pytest
    session that starts makes /tmp/pytest-of-root private again, so a concurrent
    pytest run would lock a running stack's servers out. Its logs are copied to
    `tmp_path` at the end.
    """
    with tempfile.TemporaryDirectory(prefix="saga-chaos-") as base:
        stack = Stack(
            Path(base),
            free_ports=True,
            extra_env={"SAGA_TIMEOUT_SECONDS": str(SAGA_TIMEOUT_SECONDS)},
        )
        try:
            stack.start()
            yield stack
        finally:
            try:
                stack.stop()
            finally:
                if (logs := Path(base) / "logs").is_dir():
                    shutil.copytree(logs, tmp_path / "logs")


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[[dict[str, Any]], None]:
    """Save a result row to tests/failure/results/latest.json, for the session's report."""

    def add(row: dict[str, Any]) -> None:
        request.config.stash.setdefault(_ROWS, []).append(row)
        report.save_row(row)

    return add


def _rows(config: pytest.Config) -> list[dict[str, Any]]:
    return config.stash.get(_ROWS, [])


def pytest_sessionfinish(session: pytest.Session) -> None:
    """When chaos scenarios ran: write docs/reliability.md from the latest results."""
    if not _rows(session.config):
        return
    from .test_chaos import FAULTS

    rows = report.ordered(report.load_rows(), [fault.name for fault in FAULTS])
    report.DOC.write_text(report.render(rows))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = _rows(config)
    if not rows:
        return
    terminalreporter.section("chaos results")
    for line in report.terminal_table(rows):
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"written: {report.RESULTS} and {report.DOC}")
