"""The service template (`make new-service`) cannot rot: what it makes passes its own checks.

Each test copies the workspace into a fresh git repository in a temporary directory (a
fork, as a team would start from), generates a throwaway service there with the same
command `make new-service` runs, and runs that service's lint, type check and tests
against real PostgreSQL and the broker, with the tools of this workspace.
"""

import sys
from pathlib import Path

import pytest

from devstack.stack import discover_services, service_ports

from .forks import FORK_TEST_MARKS, REPO, check_service, git, new_service, run, workspace_copy

pytestmark = FORK_TEST_MARKS


def test_a_generated_service_passes_its_lint_type_check_and_tests(tmp_path):
    root = workspace_copy(tmp_path)

    made = new_service(root, "widget", "--topic", "orders.events")

    assert "created services/widget/" in made.stdout
    assert "x-widget: &widget" in made.stdout  # the compose lines to add
    check_service(root, "widget")
    # The new service is all that changed: no other service, no shared file.
    assert git(root, "status", "--porcelain", "--untracked-files=normal").splitlines() == [
        "?? services/widget/"
    ]
    answers = (root / "services" / "widget" / ".copier-answers.yml").read_text()
    assert f"_commit: {git(root, 'rev-parse', 'HEAD').strip()}" in answers
    next_port = 1 + max(service_ports(root, svc)[0] for svc in discover_services(REPO))
    assert f"port: {next_port}\n" in answers  # the next port after the existing services'


@pytest.fixture(scope="module")
def fork(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy for the tests that must leave it as it was."""
    return workspace_copy(tmp_path_factory.mktemp("fork"))


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("Shipping", "use 2-20 lower-case letters and digits"),
        ("ship-ping", "use 2-20 lower-case letters and digits"),
        ("9lives", "use 2-20 lower-case letters and digits"),
        ("chassis", "reserved"),
        ("order", "already exists"),
    ],
)
def test_a_bad_or_taken_name_is_refused_with_a_reason_and_nothing_written(name, error, fork):
    refused = new_service(fork, name, ok=False)

    assert refused.returncode == 2
    assert error in refused.stderr
    assert git(fork, "status", "--porcelain") == ""


def test_an_unknown_topic_is_refused_and_nothing_written(fork):
    refused = new_service(fork, "widget", "--topic", "widgets.events", ok=False)

    assert refused.returncode == 2
    assert "bad topic 'widgets.events'" in refused.stderr
    assert git(fork, "status", "--porcelain") == ""


def test_copier_update_brings_a_later_template_change_and_keeps_the_service_own(tmp_path):
    root = workspace_copy(tmp_path)
    new_service(root, "widget")
    git(root, "add", "--all")
    git(root, "commit", "--quiet", "--message", "widget, from the template")
    readme = root / "services" / "widget" / "README.md"
    readme.write_text(readme.read_text().replace("Produces nothing yet.", "Produces gadgets."))
    git(root, "commit", "--quiet", "--all", "--message", "widget: its own change")
    template = root / "templates" / "service" / "README.md.jinja"
    template.write_text(template.read_text() + "\nA line the template gained later.\n")
    git(root, "commit", "--quiet", "--all", "--message", "template: a later improvement")

    run([sys.executable, "-m", "devstack.scaffold", "--root", root, "--update", "widget"], cwd=root)

    text = readme.read_text()
    assert "A line the template gained later." in text
    assert "Produces gadgets." in text
    answers = (root / "services" / "widget" / ".copier-answers.yml").read_text()
    assert f"_commit: {git(root, 'rev-parse', 'HEAD').strip()}" in answers
