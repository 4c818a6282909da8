"""The relay's pace: rounds spaced only while it sends many rows a second."""

from chassis.relay import _BUSY_ROWS_PER_SECOND, _ROUND_INTERVAL_SECONDS, _Pace

BUSY, QUIET = 300, 100
"""Rows a second on either side of the threshold."""


def rounds(pace: _Pace, rows_per_second: int, start: float, seconds: int) -> None:
    """A round every 10 ms for `seconds`, sending `rows_per_second` between them."""
    for tick in range(seconds * 100):
        pace.sent(rows_per_second // 100, start + tick / 100)


def test_the_rates_here_lie_either_side_of_the_threshold() -> None:
    assert QUIET < _BUSY_ROWS_PER_SECOND < BUSY


def test_a_new_relay_sends_at_once() -> None:
    assert _Pace().interval == 0.0


def test_a_busy_relay_spaces_its_rounds() -> None:
    pace = _Pace()
    rounds(pace, BUSY, start=100.0, seconds=2)
    assert pace.busy
    assert pace.interval == _ROUND_INTERVAL_SECONDS


def test_a_relay_under_the_threshold_sends_at_once() -> None:
    pace = _Pace()
    rounds(pace, QUIET, start=100.0, seconds=3)
    assert pace.interval == 0.0


def test_the_pace_follows_the_last_second() -> None:
    pace = _Pace()
    rounds(pace, BUSY, start=100.0, seconds=2)
    rounds(pace, 0, start=102.0, seconds=2)
    assert not pace.busy


def test_an_idle_spell_counts_as_time_without_rows() -> None:
    pace = _Pace()
    rounds(pace, BUSY, start=100.0, seconds=2)
    pace.sent(BUSY, 110.0)  # a second's worth of rows, after nine seconds of idle
    assert not pace.busy
