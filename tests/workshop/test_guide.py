"""The workshop guide's commands work as written, so the modules cannot rot.

Every command in a module's `sh` blocks must be a Makefile target (with a known
scenario name for `make scenario`) or one of a few tools. Then each module's commands
run, in order, against a real stack with the console (the session's `workshop`
fixture stands in for `make up`): each must exit 0, and after each module every order
it placed is terminal, and the console shows it as the order service does.

Placeholders are filled in as a trainer would: `<order_id>` with the last order a
command printed, `<trace_id>` with that order's trace id from the console. Ports and
`.stack/` are those of the test's stack. Not run: `make up` and `make install` (the
fixture), and what changes the tree or needs Docker (`make contracts`, `git`, `docker`).
"""

import asyncio
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.client import TERMINAL, SagaClient
from devstack.stack import SERVICES, port_env
from devstack.workshop import CONSOLE_PORT_ENV, CONTROLS

from .guide import GUIDE, MODULES, OTHER_MODULES, REPO, SECTIONS, commands, make_call, make_targets

pytestmark = pytest.mark.e2e

TOOLS = {"curl", "grep", "git", "docker"}
"""Programs other than make that the modules may use."""
NOT_RUN = {"up", "install", "contracts"}
"""Targets the test does not run: the fixture is the stack; `contracts` rewrites files."""
NOT_RUN_TOOLS = {"git", "docker"}
DEFAULT_PORTS = {"order": 8001, "inventory": 8002, "payment": 8003}
_ORDER_LINE = re.compile(r"^  order ([0-9a-f-]{36})$", re.MULTILINE)


@pytest.mark.parametrize("name", ["README.md", *MODULES])
def test_every_command_is_a_make_target_or_a_known_tool(name):
    targets, scenarios = make_targets(), {c.name for c in CONTROLS}
    for command in commands(GUIDE / name):
        call = make_call(command)
        if call is None:
            assert command.split()[0] in TOOLS, f"{name}: {command!r} uses an unknown program"
            continue
        target, variables = call
        assert target in targets, f"{name}: {command!r}: no target {target!r} in the Makefile"
        if target == "scenario":
            assert variables.get("NAME") in scenarios, f"{name}: {command!r}: no such scenario"


def test_the_index_lists_every_module_and_each_has_its_sections():
    index = (GUIDE / "README.md").read_text()
    for module in (*MODULES, *OTHER_MODULES):
        assert f"]({module})" in index, f"README.md does not link {module}"
    for module in MODULES:
        text = (GUIDE / module).read_text()
        missing = [s for s in SECTIONS if s not in text]
        assert not missing, f"{module} lacks {missing}"
        assert commands(GUIDE / module), f"{module} has no commands"


@pytest.mark.parametrize("module", MODULES)
async def test_the_module_runs_as_written(module, workshop, saga_client):
    stack = workshop.stack
    env = {
        **os.environ,
        CONSOLE_PORT_ENV: str(workshop.console_port),
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        **{port_env(svc): str(stack.ports.services[svc]) for svc in SERVICES},
    }
    placed: list[str] = []
    for command in commands(GUIDE / module):
        call = make_call(command)
        if (call and call[0] in NOT_RUN) or command.split()[0] in NOT_RUN_TOOLS:
            continue
        line = await fill_in(command, workshop, placed)
        result = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-o", "pipefail", "-c", line],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert result.returncode == 0, f"{module}: {line!r} failed:\n{result.stdout}{result.stderr}"
        placed += _ORDER_LINE.findall(result.stdout)
    assert placed, f"{module} placed no order"
    for order_id in placed:
        order = await saga_client.wait_terminal(order_id, 120)
        seen = await console_order(workshop.console_url, order_id, order["status"])
        assert (seen["status"], seen["reason"]) == (order["status"], order["reason"])


async def fill_in(command: str, workshop: Any, placed: list[str]) -> str:
    """The command with this stack's ports and directory, and placeholders filled in."""
    stack = workshop.stack
    for svc, port in DEFAULT_PORTS.items():
        command = re.sub(rf"\b(localhost|127\.0\.0\.1):{port}\b", stack.url(svc)[7:], command)
    command = command.replace(".stack/", f"{stack.base_dir}/")
    if "<order_id>" in command or "<trace_id>" in command:
        assert placed, f"{command!r} needs an order, and none was placed before it"
        seen = await console_order(workshop.console_url, placed[-1], None)
        if "<trace_id>" in command and seen["trace_id"]:
            await _exported(stack.base_dir / "traces", seen["trace_id"])
        command = command.replace("<order_id>", placed[-1])
        command = command.replace("<trace_id>", seen["trace_id"] or "(no trace id)")
    return command


async def _exported(traces: Path, trace_id: str) -> None:
    """Wait until a span of `trace_id` is in the services' trace files, as a trainer
    reading the console would have: the services export their spans every 0.5 s, so
    an order can be terminal before its trace is on disk."""

    async def written() -> bool:
        return any(trace_id in path.read_text() for path in traces.glob("*.jsonl"))

    await SagaClient.wait_for(written, timeout=30, interval=0.2)


async def console_order(console_url: str, order_id: str, status: str | None) -> dict[str, Any]:
    """The order as the console shows it, once it is terminal (and has `status`, if given)."""
    seen: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=console_url, timeout=5) as http:
        async with asyncio.timeout(60):
            while True:
                response = await http.get(f"/api/orders/{order_id}")
                if response.status_code == 200:
                    seen = response.json()
                    if seen["status"] in TERMINAL and status in (None, seen["status"]):
                        return seen
                await asyncio.sleep(0.2)
