"""The generator's checks and the docker-compose lines it prints, without rendering anything."""

import pytest

from devstack.errors import DevstackError
from devstack.scaffold import check_name, check_topic, compose_blocks
from devstack.stack import find_repo_root

REPO = find_repo_root()


def blocks(text: str) -> list[str]:
    """The pieces of `compose_blocks` output, without the lines that say where they go."""
    pieces = text.split("\n\n")
    kept = ("\n".join(x for x in p.splitlines() if not x.startswith("#")) for p in pieces)
    return [piece for piece in kept if piece.strip()]


@pytest.mark.parametrize(("svc", "port"), [("inventory", 8002), ("payment", 8003)])
def test_the_printed_compose_blocks_are_those_of_a_service_already_in_the_file(svc, port):
    compose = (REPO / "docker-compose.yml").read_text()
    for block in blocks(compose_blocks(svc, port)):
        assert block in compose, f"not in docker-compose.yml:\n{block}"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("x", "2-20 lower-case letters"),
        ("a" * 21, "2-20 lower-case letters"),
        ("with_underscore", "2-20 lower-case letters"),
        ("class", "reserved"),
        ("devstack", "reserved"),
        ("payment", "already exists"),
    ],
)
def test_a_bad_name_is_refused_with_the_reason(name, reason):
    with pytest.raises(DevstackError, match=reason):
        check_name(REPO, name)


def test_a_fresh_name_and_a_template_topic_pass():
    check_name(REPO, "ledger")
    check_topic("payments.events")
    with pytest.raises(DevstackError, match="bad topic"):
        check_topic("shipments.events")  # a real topic, but the template has no example of it
