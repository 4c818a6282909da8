"""Backoff: doubling from `base`, capped, reset on success, with ±20% jitter."""

import random

import pytest

from chassis.retry import Backoff


@pytest.fixture
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "uniform", lambda _low, _high: 1.0)


@pytest.mark.usefixtures("no_jitter")
def test_delays_double_from_base_up_to_the_cap() -> None:
    backoff = Backoff(base=0.1, cap=5.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0])
    assert backoff.attempts == 10


@pytest.mark.usefixtures("no_jitter")
def test_defaults_are_a_tenth_of_a_second_capped_at_five() -> None:
    backoff = Backoff()
    assert backoff.next_delay() == pytest.approx(0.1)
    assert [backoff.next_delay() for _ in range(20)][-1] == pytest.approx(5.0)


@pytest.mark.usefixtures("no_jitter")
def test_reset_starts_again_from_base() -> None:
    backoff = Backoff(base=0.5, cap=10.0)
    for _ in range(4):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert [backoff.next_delay(), backoff.next_delay()] == pytest.approx([0.5, 1.0])


@pytest.mark.usefixtures("no_jitter")
def test_a_base_above_the_cap_is_capped() -> None:
    assert Backoff(base=10.0, cap=2.0).next_delay() == pytest.approx(2.0)


def test_jitter_is_within_20_percent(monkeypatch: pytest.MonkeyPatch) -> None:
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", uniform)
    assert Backoff(base=1.0).next_delay() == pytest.approx(1.2)
    assert bounds == [(0.8, 1.2)]


def test_jittered_delays_stay_in_bounds_and_vary() -> None:
    for attempts, nominal in enumerate([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]):
        delays = []
        for _ in range(200):
            backoff = Backoff()
            backoff.attempts = attempts
            delays.append(backoff.next_delay())
        assert all(0.8 * nominal <= d <= 1.2 * nominal for d in delays), attempts
        assert len(set(delays)) > 1, "jitter spreads retries out"
