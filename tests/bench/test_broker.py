"""A short run of `broker.py`: it prints the broker's cost per delivery at each size."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("broker.py")


@pytest.mark.integration
def test_a_short_run_prints_a_cost_for_every_partition_size() -> None:
    argv = [sys.executable, str(SCRIPT), "--batches", "0,300", "--deliveries", "30"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = re.findall(r"^ +(\d+) +(\d+) us +([\d.]+) ms +([\d.]+) ms$", run.stdout, re.MULTILINE)
    assert [int(row[0]) for row in rows] == [0, 300], run.stdout
    assert all(float(ms) > 0 for row in rows for ms in row[2:]), run.stdout


@pytest.mark.parametrize("sizes", ["500,100", "-1,5", "ten"])
def test_sizes_that_are_not_ascending_counts_are_refused(sizes: str) -> None:
    run = subprocess.run(
        [sys.executable, str(SCRIPT), f"--batches={sizes}"], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert f"--batches {sizes}: give batch counts" in run.stderr
