"""The commands of docs/workshop/06-adding-a-service.md work, in the order the page gives them.

The test runs them in a fork of the workspace (its branch `main` is this workspace as it
is): delete shipping, stamp it again from the template and test what was generated,
put the reference solution back and test it, and check that order, inventory and
payment did not change. The git commands run as written; a `make` command runs what
that target runs (the fork has no environment of its own). Every shell command on the
page must be one this test runs or one another test covers, so the page and the tests
cannot drift apart.
"""

import re
import sys
from pathlib import Path

from .forks import FORK_TEST_MARKS, REPO, check_service, new_service, run, workspace_copy

pytestmark = FORK_TEST_MARKS

PAGE = REPO / "docs" / "workshop" / "06-adding-a-service.md"

RUN_HERE = [
    "git switch -c workshop/shipping",
    'git rm -r -q services/shipping && git commit -q -m "workshop: build shipping from scratch"',
    "make new-service NAME=shipping TOPIC=orders.events",
    "git status --short",
    "make test SERVICE=shipping",
    "rm -rf services/shipping && git checkout main -- services/shipping",
    "make contracts",
    "make test SERVICE=shipping",
    "git diff --quiet main -- services/order services/inventory services/payment && echo untouched",
]
"""This test's steps, each a command of the page, in the page's order."""

COVERED_ELSEWHERE = {
    "make up": "tests/e2e/test_new_service.py (Stack.add_service) and devstack discovery",
    "curl localhost:8004/v1/shipments/<order_id>": "tests/e2e/test_new_service.py",
    "curl -X POST localhost:8001/v1/orders/<order_id>/cancel": "tests/e2e/test_new_service.py",
}

IDENTITY = {
    "GIT_AUTHOR_NAME": "workshop",
    "GIT_AUTHOR_EMAIL": "workshop@example.invalid",
    "GIT_COMMITTER_NAME": "workshop",
    "GIT_COMMITTER_EMAIL": "workshop@example.invalid",
}


def page_commands() -> list[str]:
    """Every command in the page's `sh` blocks, without its trailing comment."""
    blocks = re.findall(r"```sh\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)
    lines = (line.split("  #")[0].strip() for block in blocks for line in block.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_every_command_of_the_page_is_run_here_or_covered_elsewhere():
    commands = page_commands()
    assert [c for c in commands if c in RUN_HERE] == RUN_HERE  # all of them, in this order
    assert set(commands) <= {*RUN_HERE, *COVERED_ELSEWHERE}


def make_contracts(root: Path) -> None:
    """`make contracts` for the fork: the event schemas, asyncapi.yaml, shipping's OpenAPI."""
    run([sys.executable, "shared-contracts/generate_schemas.py"], cwd=root)
    env = {"PYTHONPATH": str(root / "services" / "shipping" / "src")}
    document = "services/shipping/openapi.json"
    run([sys.executable, "-m", "chassis.openapi", "shipping", document], cwd=root, env=env)


def test_the_workshop_commands_rebuild_shipping_without_touching_the_other_three(tmp_path):
    root = workspace_copy(tmp_path)
    outputs = []
    tested = False
    for command in RUN_HERE:
        if command == "make new-service NAME=shipping TOPIC=orders.events":
            outputs.append(new_service(root, "shipping", "--topic", "orders.events").stdout)
        elif command == "make test SERVICE=shipping":
            # Once, on the generated service. The second time shipping is main's own
            # again (the diff against main below is empty), which `make test` itself
            # lints, type-checks and tests (services/shipping/tests).
            if not tested:
                check_service(root, "shipping")
            tested = True
        elif command == "make contracts":
            make_contracts(root)
        else:
            outputs.append(run(["bash", "-ec", command], cwd=root, env=IDENTITY).stdout)

    generated, status = outputs[2], outputs[3]
    assert "created services/shipping/ (port 8004, consuming orders.events)" in generated
    # Only the new service (and, with `make`, uv.lock) is new after generating it.
    assert set(status.splitlines()) <= {"?? services/shipping/", " M uv.lock"}
    assert outputs[-1] == "untouched\n"
    # Back to the reference: the fork is `main` again, and make contracts agrees with it.
    assert run(["git", "diff", "--name-only", "main"], cwd=root).stdout == ""
    assert run(["git", "ls-files", "--others", "--exclude-standard"], cwd=root).stdout == ""
