"""Reading the workshop guide's commands: the `sh` blocks of `docs/workshop/*.md`."""

import re
import shlex
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "workshop"
MODULES = (
    "01-happy-path.md",
    "02-compensation.md",
    "03-service-killed.md",
    "05-evolving-contracts.md",
)
"""The modules whose commands `test_guide` runs, in the order a trainer does."""
OTHER_MODULES = ("04-distributed-monolith.md", "06-adding-a-service.md")
"""Modules the index lists that come with their own features (`make compare`, the template)."""
SECTIONS = (
    "**Goal.**",
    "## Steps",
    "## What to look at",
    "## Questions for the room",
    "## Expected outcome",
)

_SH_BLOCK = re.compile(r"^[ \t]*```sh\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)


def commands(path: Path) -> list[str]:
    """Every command line of the file's `sh` blocks, in order (comments left out)."""
    lines = []
    for block in _SH_BLOCK.findall(path.read_text()):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def make_targets() -> set[str]:
    """The targets the Makefile defines."""
    return set(re.findall(r"^([a-z0-9-]+):", (REPO / "Makefile").read_text(), re.MULTILINE))


def make_call(command: str) -> tuple[str, dict[str, str]] | None:
    """`(target, variables)` of a `make TARGET VAR=value ...` line; None for any other command."""
    words = shlex.split(command)
    if words[0] != "make":
        return None
    variables = dict(word.split("=", 1) for word in words[2:])
    return words[1], variables
