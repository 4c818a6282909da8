"""The soak: a fresh stack under a steady moderate load for ten minutes (`make soak`).

Memory must stay flat and the outboxes must drain; every order must complete and
every invariant hold, as in the chaos scenarios. `SOAK_SECONDS` shortens (or
lengthens) the run, `SOAK_RATE` changes the orders per second. The row it records
becomes the Soak section of docs/reliability.md.
"""

import os

import pytest

from devstack.stack import Stack

from . import report
from .harness import Load, assert_passed, run_scenario
from .overload import Soak

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "600"))
SOAK_RATE = float(os.environ.get("SOAK_RATE", "20"))
WARMUP_SECONDS = min(60.0, SOAK_SECONDS / 4)
"""Memory is compared with what it was after this long: before, caches and pools fill."""
SETTLE_SECONDS = max(120.0, SOAK_SECONDS / 2)
"""Reading back every order and checking every invariant takes longer the longer the run."""

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.soak,
    pytest.mark.timeout(SOAK_SECONDS + SETTLE_SECONDS + 300),
]

SEED = int(os.environ.get("CHAOS_SEED", "20250")) + 1000


async def test_memory_stays_flat_and_the_outbox_drains_under_a_steady_load(
    chaos_stack: Stack, record
) -> None:
    soak = Soak(SOAK_SECONDS, SOAK_RATE, WARMUP_SECONDS)
    load = Load(orders=round(SOAK_RATE * SOAK_SECONDS), seconds=SOAK_SECONDS)
    result = await run_scenario(
        soak, chaos_stack, SEED, report.machine(), load=load, settle_timeout=SETTLE_SECONDS
    )
    record(result.as_json())
    assert_passed(result)
