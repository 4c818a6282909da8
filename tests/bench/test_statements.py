"""A short run of `statements.py`: it prints a cost per statement for every layer."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("statements.py")


@pytest.mark.integration
def test_a_short_run_prints_a_cost_for_every_layer() -> None:
    argv = [sys.executable, str(SCRIPT), "--statements", "200", "--rounds", "1"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    costs = dict(re.findall(r"^  (\S.*?\S) +(\d+) us$", run.stdout, flags=re.MULTILINE))
    assert list(costs) == [
        "AsyncSession.execute (the services)",
        "AsyncConnection.execute",
        "AsyncConnection.exec_driver_sql",
        "asyncpg fetchrow",
    ], run.stdout
    assert all(int(us) > 0 for us in costs.values()), run.stdout
