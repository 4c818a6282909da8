from devstack.latency import percentiles


def test_percentiles_are_milliseconds_at_the_points_asked_for():
    seconds = [i / 1000 for i in range(1, 101)]  # 1 ms .. 100 ms

    assert percentiles(seconds) == {"p50": 50.5, "p95": 95.1, "p99": 99.0, "max": 100.0}
    assert percentiles(seconds, (50, 99)) == {"p50": 50.5, "p99": 99.0, "max": 100.0}


def test_one_value_is_every_percentile_and_none_is_nothing():
    assert percentiles([0.25], (50, 99)) == {"p50": 250.0, "p99": 250.0, "max": 250.0}
    assert percentiles([]) == {}
