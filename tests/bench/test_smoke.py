"""A few seconds of `make bench`: it runs end to end and writes a well-formed report."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.ports import free_port
from devstack.stack import SERVICES, Stack

RUN = Path(__file__).with_name("run.py")


def bench(
    argv: list[str], urls: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run the bench; with `urls`, its services found there, as `make invariants` finds them."""
    env = os.environ | {f"{svc.upper()}_URL": url for svc, url in (urls or {}).items()}
    command = [sys.executable, str(RUN), *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.e2e
def test_a_short_run_writes_a_well_formed_report(tmp_path: Path) -> None:
    argv = ["--mode", "flat", "--seconds", "2", "--warmup", "0.5", "--concurrency", "2"]
    argv += ["--instances", "order=2", "--instances", "payment=2", "--db-latency", "payment=2"]
    argv += ["--accounts", "20"]
    argv += ["--results", str(tmp_path)]
    run = bench(argv)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "[bench] flat: checking the invariants" in run.stderr, "progress is shown"

    (report,) = tmp_path.glob("flat-*.json")
    assert report.with_suffix(".png").stat().st_size > 0
    result = json.loads(report.read_text())
    assert result["instances"] == {"order": 2, "inventory": 1, "payment": 2}
    assert result["database_latency_ms"] == {"order": 0, "inventory": 0, "payment": 2}
    assert result["seeded"] == {"products": 50, "accounts": 20}
    assert result["sagas_completed_per_second"] > 0
    assert result["invariant_violations"] == []
    assert set(result["outcomes"]) <= {"CONFIRMED", "CANCELLED"}
    services = ("order", "order-2", "inventory", "payment", "payment-2")
    for name in (*services, "broker", "postgres-order", "loadgen"):
        assert result["cpu_ms_per_completed_saga"][name] >= 0
        assert result["cpu_utilisation_in_window"][name] >= 0
    assert result["cpu_series"]["step_seconds"] > 0
    assert all(len(c) == 1 for c in result["cpu_series"]["cores"].values()), "2 s is one step"
    assert set(result["memory"]) == set(services)
    assert all(m["peak_rss_mb"] > 0 for m in result["memory"].values())
    latency = result["saga_latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert "CONFIRMED" in result["outcomes"], "the seeded stock and funds never run out"
    legs = result["saga_steps_ms"]
    assert set(legs) == {
        "placed_to_charged",
        "charged_to_payment_answer_applied",
        "placed_to_stock_answer_applied",
        "placed_to_payment_answer_applied",
    }
    assert all(0 < leg["p50"] <= leg["p99"] <= leg["max"] for leg in legs.values())
    assert result["cpu_ms_per_completed_saga"]["loadgen"] > 0, "the load generator's own CPU"


@pytest.mark.e2e
def test_a_short_run_against_a_running_stack(tmp_path: Path) -> None:
    """`--running` loads a stack it did not start, found as `make invariants` finds one."""
    with Stack(tmp_path / "stack", free_ports=True) as stack:
        argv = ["--running", "--mode", "rate", "--rate", "20", "--seconds", "2"]
        argv += ["--warmup", "0.5", "--accounts", "20", "--results", str(tmp_path)]
        run = bench(argv, {svc: stack.url(svc) for svc in SERVICES})
        assert run.returncode == 0, run.stderr[-3000:]
        assert f"using the running stack: order {stack.url('order')}" in run.stderr
        assert stack.pid("order") is not None, "the stack runs on after the bench"

    (report,) = tmp_path.glob("rate-*.json")
    assert report.with_suffix(".png").stat().st_size > 0
    result = json.loads(report.read_text())
    assert result["stack"] == "running"
    assert "instances" not in result, "a running stack's are not the bench's to know"
    assert result["sagas_completed_per_second"] > 0
    assert set(result["outcomes"]) == {"CONFIRMED"}, "the seeded stock and funds never run out"
    assert result["invariant_violations"] == []
    assert set(result["cpu_ms_per_completed_saga"]) == {"loadgen"}, "only its own processes"
    assert result["memory"] == {}
    assert "not measured (a running stack)" in run.stdout


def test_running_refuses_what_needs_a_stack_of_its_own() -> None:
    for option in (["--instances", "payment=2"], ["--profile"], ["--max-pending", "9"]):
        run = bench(["--running", *option], timeout=60)
        assert run.returncode == 2
        assert f"{option[0]} needs a stack the bench starts; not with --running" in run.stderr


def test_running_says_when_no_stack_answers(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    argv = ["--running", "--mode", "rate", "--results", str(tmp_path)]
    run = bench(argv, dict.fromkeys(SERVICES, closed), timeout=60)
    assert run.returncode == 1
    assert "no stack answers there" in run.stderr and "make up" in run.stderr
    assert not list(tmp_path.iterdir()), "no report of a run that did not happen"
