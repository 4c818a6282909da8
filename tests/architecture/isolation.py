"""Install a service alone into a throwaway virtualenv and run its tests there.

The workspace's `.venv` holds every package at once, so it cannot show that a service
needs nothing of its siblings. This builds wheels with `uv build`, creates a fresh venv
with `uv venv`, installs the service's locked third-party dependencies (exported from
`uv.lock`: the same versions the workspace runs) and then exactly the wheels it is
given, and runs pytest from the service's directory with that venv's Python. Installs
come from uv's cache (`--offline`, filled by `make install`); only when that misses do
they go to the package index.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).parents[2]
SERVICES = tuple(sorted(p.parent.name for p in (REPO / "services").glob("*/pyproject.toml")))
"""Every service in the tree, so that a new one is held to the same rules without a line
changed here."""

PYTEST_INI = """\
[pytest]
addopts = --strict-markers --strict-config --import-mode=importlib -p no:cacheprovider
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
xfail_strict = true
filterwarnings = error
markers =
    integration: needs real PostgreSQL and the broker
    e2e: runs the whole stack as real processes
"""
"""The root pytest settings that matter to a service's tests, without the workspace's
plugins (no pytest-timeout, no schemathesis) or its test paths."""


def uv_binary() -> str:
    """The uv that `make install` puts in `.uv/`, else one on PATH."""
    local = REPO / ".uv" / "bin" / "uv"
    found = str(local) if local.exists() else shutil.which("uv")
    assert found, "uv not found: run `make install`"
    return found


def run(args: list[str], cwd: Path = REPO, timeout: float = 240) -> str:
    """Run a command in its own process group; its output, or an assertion error with it.

    On timeout the whole group gets SIGINT first, so that a pytest run tears its fixtures
    down (and stops the PostgreSQL and broker it started), then SIGKILL.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}
    process = subprocess.Popen(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        output = stop_group(process)
        raise AssertionError(f"timed out after {timeout}s: {args}\n{output}") from None
    assert process.returncode == 0, f"exit {process.returncode}: {args}\n{output}"
    return output


def stop_group(process: subprocess.Popen[str]) -> str:
    """Stop a process started by `run` and everything in its group; what it printed."""
    for sig, grace in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
            output, _ = process.communicate(timeout=grace)
            return output
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            break
    output, _ = process.communicate()
    return output


def build_wheel(source: Path, out: Path) -> Path:
    """Build the wheel of the package at `source` into `out`; its path.

    `--no-sources` ignores `[tool.uv.sources]`: the wheel's metadata is what an index
    would serve, and a source outside the workspace (an old release) builds too.
    """
    before = set(out.glob("*.whl"))
    run(
        [
            uv_binary(),
            "build",
            "--quiet",
            "--no-sources",
            "--wheel",
            "--out-dir",
            str(out),
            str(source),
        ]
    )
    (wheel,) = set(out.glob("*.whl")) - before
    return wheel


def release_source(package: str, version: str, dest: Path) -> Path:
    """The source of `package` (a workspace path, e.g. `libs/chassis`) as released at
    `version`: the commit its CHANGELOG names for that release, extracted into `dest`.

    A commit found by its hash, not a tag, so that it works in any clone of the history
    (CI's included) whether or not tags came along.
    """
    changelog = (REPO / package / "CHANGELOG.md").read_text()
    section = changelog.split(f"## [{version}]", 1)[1].split("\n## [", 1)[0]
    match = re.search(r"commit `([0-9a-f]{40})`", section)
    assert match, f"{package}/CHANGELOG.md names no commit for {version}"
    commit = match.group(1)
    archive = dest / "source.tar"
    run(["git", "archive", "--output", str(archive), commit, package])
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    source = dest / package
    recorded = tomllib.loads((source / "pyproject.toml").read_text())["project"]["version"]
    assert recorded == version, f"{package} at {commit} is {recorded}, not {version}"
    return source


@dataclass(frozen=True)
class Venv:
    """A throwaway virtualenv holding one service and what it depends on."""

    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @classmethod
    def create(cls, path: Path, locked_for: list[str], wheels: list[Path]) -> "Venv":
        """A venv with the locked dependencies of the packages `locked_for` (each with its
        `test` group, if it has one) and exactly `wheels` of the workspace's packages."""
        uv = uv_binary()
        # The workspace interpreter; uv makes the venv from the Python it was created from.
        run([uv, "venv", "--quiet", "--python", sys.executable, str(path)])
        venv = cls(path)
        lock = path / "pylock.toml"
        export = [uv, "export", "--quiet", "--frozen", "--no-emit-workspace", "--format"]
        export += ["pylock.toml", "--output-file", str(lock), "--group", "test"]
        run(export + [arg for name in locked_for for arg in ("--package", name)])
        venv.install(["-r", str(lock)])
        # --no-deps: the third-party dependencies are in; nothing else of the workspace may be.
        venv.install(["--no-deps", *map(str, wheels)])
        run([uv, "pip", "check", "--python", str(venv.python)])
        return venv

    def install(self, args: list[str]) -> None:
        """`uv pip install`, from the cache when it can, else from the index."""
        command = [uv_binary(), "pip", "install", "--quiet", "--python", str(self.python)]
        try:
            run([*command, "--offline", *args])
        except AssertionError:
            run([*command, *args])

    def pytest(self, service: str, paths: list[str], with_harness: bool = False) -> str:
        """Run `paths` of a service's tests from its directory with this venv's Python.

        Without the harness only the service's own conftest is loaded; with it, the
        repository's root conftest too (PostgreSQL and the broker, from `devstack`), which
        integration tests need.
        """
        ini = self.path / "pytest.ini"
        ini.write_text(PYTEST_INI)
        directory = REPO / "services" / service
        scope = (
            ["--rootdir", str(REPO)] if with_harness else ["--rootdir", ".", "--confcutdir", "."]
        )
        # A temporary directory of its own: under the running session's root, pytest
        # would reset that root's `pytest-of-<user>` to mode 0700, and the session's
        # PostgreSQL servers, running as an unprivileged user, could no longer read their
        # configuration (a reload, as each database provisioned does, then fails).
        basetemp = f"--basetemp={self.path / 'pytest-tmp'}"
        return run(
            [str(self.python), "-m", "pytest", "-c", str(ini), *scope, basetemp, "-q", *paths],
            cwd=directory,
        )

    def where(self, module: str) -> str:
        """The file `module` is imported from in this venv."""
        return run([str(self.python), "-c", f"import {module}; print({module}.__file__)"]).strip()

    def version(self, distribution: str) -> str:
        """The version of `distribution` installed in this venv."""
        probe = f"from importlib.metadata import version; print(version({distribution!r}))"
        return run([str(self.python), "-c", probe]).strip()

    def can_import(self, module: str) -> bool:
        """Whether `module` is importable at all in this venv."""
        probe = f"import importlib.util as u; print(u.find_spec({module!r}) is not None)"
        return run([str(self.python), "-c", probe]).strip() == "True"

    def run_python(self, code: str) -> str:
        """Run `code` with this venv's Python; its output."""
        return run([str(self.python), "-c", code])
