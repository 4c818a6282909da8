"""`make compare` end to end on a tiny workload: the report is whole and its numbers add up.

The workshop module (docs/workshop/04-distributed-monolith.md) runs the same command;
`test_the_workshop_commands_are_the_ones_tested` keeps it to commands this file covers.
"""

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from compare import report
from compare.run import DESIGNS, parse
from compare.workload import MIX

REPO = Path(__file__).resolve().parents[3]
WORKSHOP = REPO / "docs" / "workshop" / "04-distributed-monolith.md"
TINY = "--seconds 3 --rate 4 --faults fail --seed 3"


@pytest.mark.e2e
def test_make_compare_writes_a_table_a_plot_and_numbers_that_add_up(tmp_path):
    doc = tmp_path / "comparison.md"
    doc.write_text(f"# before\n\n{report.START}\nold\n{report.END}\n\nafter\n")
    args = f"{TINY} --out {tmp_path / 'compare'} --doc {doc}"
    done = subprocess.run(
        ["make", "--no-print-directory", "compare", f"COMPARE_ARGS={args}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    result = json.loads((tmp_path / "compare.json").read_text())
    rows = result["rows"]
    assert [row["fault_key"] for row in rows] == ["fail"] * len(DESIGNS)
    for row in rows:
        assert row["placed"] == result["workload"]["orders_per_cell"] == 12
        assert row["succeeded"] + row["failed"] + row["pending"] == row["placed"], row
        assert sum(sum(kind.values()) for kind in row["by_kind"].values()) == row["placed"]
        assert set(row["by_kind"]) == set(MIX)
        assert 0 <= row["lost_sales"] <= row["failed"] + row["pending"]
        assert 0 <= row["inconsistent"] <= row["placed"]
        assert sum(row["answers"].values()) == row["placed"]
        assert set(row["latency_ms"]) == {"p50", "p99", "max"}
        assert row["latency_ms"]["p50"] <= row["latency_ms"]["p99"] <= row["latency_ms"]["max"]
        # Payment's traffic went through the fault proxy: Kafka requests, or HTTP calls.
        assert row["proxy"]["requests"] > 0
        assert row["proxy"]["reset"] <= row["proxy"]["requests"]
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = report.table(result)
    assert "\n".join(table) in doc.read_text()
    assert doc.read_text().startswith("# before") and doc.read_text().endswith("after\n")
    assert "old" not in doc.read_text()
    assert all(row["design"] in done.stdout for row in rows)
    assert "[compare]" in done.stderr  # the progress lines


def test_the_workshop_commands_are_the_ones_tested():
    commands = [
        line.strip()
        for block in re.findall(r"```sh\n(.*?)```", WORKSHOP.read_text(), re.S)
        for line in block.splitlines()
        if line.strip().startswith("make ")
    ]
    assert commands, "the workshop module runs no make command"
    for command in commands:
        words = shlex.split(command)
        assert words[1] == "compare", command
        extra = [w.removeprefix("COMPARE_ARGS=") for w in words[2:]]
        parse(shlex.split(" ".join(extra)))  # each option the module uses exists


def test_nothing_real_imports_the_anti_pattern():
    """The monolith is for the comparison only: no service or shared library may use it."""
    for root in ("services", "libs", "shared-contracts", "infra/devstack"):
        for path in (REPO / root).rglob("*.py"):
            text = path.read_text()
            assert not re.search(r"^\s*(from|import) compare\b", text, re.M), path
