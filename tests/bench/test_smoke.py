"""A few seconds of `make bench`: it runs end to end and writes a well-formed report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).with_name("run.py")


@pytest.mark.e2e
def test_a_short_run_writes_a_well_formed_report(tmp_path: Path) -> None:
    argv = ["--mode", "flat", "--seconds", "2", "--warmup", "0.5", "--concurrency", "2"]
    argv += ["--instances", "order=2", "--instances", "payment=2", "--db-latency", "payment=2"]
    argv += ["--accounts", "20"]
    argv += ["--results", str(tmp_path)]
    run = subprocess.run(
        [sys.executable, str(RUN), *argv], capture_output=True, text=True, timeout=240
    )
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
