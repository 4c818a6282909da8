"""The saga under fault injection: one scenario per fault, each on a fresh stack.

Run with `make chaos` (minutes; not part of `make test`). Each test drives a few
hundred mixed orders while its fault strikes, waits for the system to settle, checks
every invariant and records a row for docs/reliability.md. `CHAOS_SEED` replays a run.
"""

import os

import pytest

from devstack.stack import Stack

from . import report
from .faults import (
    BrokerRestart,
    DatabaseOutage,
    DuplicateAndDelay,
    GracefulShutdown,
    KillRestart,
    Poison,
    ServiceDownPastTimeout,
)
from .harness import Fault, assert_passed, run_scenario
from .scaling import ScaleOutAndKill

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(420)]

FAULTS: list[Fault] = [
    KillRestart(),
    ServiceDownPastTimeout(),
    DuplicateAndDelay(),
    Poison(),
    GracefulShutdown(),
    DatabaseOutage(),
    BrokerRestart(),
    ScaleOutAndKill(),
]
"""The scenarios, in the order of docs/reliability.md. Add a `Fault` here to add one."""

BASE_SEED = int(os.environ.get("CHAOS_SEED", "20250"))


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.key)
async def test_saga_survives(fault: Fault, chaos_stack: Stack, record) -> None:
    seed = BASE_SEED + FAULTS.index(fault)
    result = await run_scenario(fault, chaos_stack, seed, report.machine())
    record(result.as_json())
    assert_passed(result)
