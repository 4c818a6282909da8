"""A copy of the workspace as a fresh git repository, and the commands run in it.

What the template tests and the workshop test share: they fork the workspace, as a
team would, and run in the fork what `make new-service` and `make test SERVICE=` run,
with this workspace's tools (the fork has no environment of its own).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
BIN = Path(sys.executable).parent
FORK_TEST_MARKS = [pytest.mark.integration, pytest.mark.timeout(900)]
"""A fork runs a whole service's test suite (its own PostgreSQL and broker) within one
test: 25 to 80 s here, over 300 s (the default limit) on a loaded machine."""


def run(
    command: list[str | Path], cwd: Path, env: dict[str, str] | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `command` in `cwd`; with `ok`, fail the test (showing its output) unless it passes."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if ok:
        assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def git(root: Path, *args: str) -> str:
    identity = ["-c", "user.name=template-test", "-c", "user.email=template-test@example.invalid"]
    return run(["git", *identity, *args], cwd=root).stdout


def workspace_copy(tmp_path: Path) -> Path:
    """The workspace's files (tracked, and new ones not ignored) as a fresh repository."""
    root = tmp_path / "workspace"
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "the workspace, as forked")
    return root


def new_service(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """What `make new-service NAME=...` runs, against the copy (its uv.lock left alone)."""
    scaffold: list[str | Path] = [sys.executable, "-m", "devstack.scaffold", "--root", root]
    return run([*scaffold, "--no-lock", *args], cwd=root, ok=ok)


def check_service(root: Path, name: str) -> None:
    """`make test SERVICE=<name>` in the copy: ruff, mypy --strict, then its tests."""
    service = root / "services" / name
    # Not installed in this environment: its package is imported from its source.
    env = {
        "PYTHONPATH": str(service / "src"),
        "MYPYPATH": str(service / "src"),
        "PYTEST_ADDOPTS": "",  # this run's options (a --basetemp, say) are not the fork's
    }
    run([BIN / "ruff", "check", service], cwd=root)
    run([BIN / "ruff", "format", "--check", service], cwd=root)
    # The workspace's cache: the third-party packages are the same, so only the copy's
    # own modules are checked afresh.
    run([BIN / "mypy", "--cache-dir", REPO / ".mypy_cache", service], cwd=root, env=env)
    # Its own temporary directory beside the fork, whatever this run's --basetemp is.
    basetemp = f"--basetemp={root.parent / f'pytest-{name}'}"
    pytest: list[str | Path] = [
        BIN / "pytest",
        "-p",
        "no:cacheprovider",
        basetemp,
        service / "tests",
    ]
    tests = run(pytest, cwd=root, env=env)
    assert " passed" in tests.stdout and "skipped" not in tests.stdout, tests.stdout
