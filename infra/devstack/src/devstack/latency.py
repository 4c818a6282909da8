"""Latency percentiles, the one way the benchmark and the comparison compute them."""

import statistics


def percentiles(seconds: list[float], points: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    """`p<N>` for each point and `max`, in milliseconds; empty when there is nothing to measure."""
    if not seconds:
        return {}
    ordered = sorted(seconds)
    cuts = (
        statistics.quantiles(ordered, n=100, method="inclusive")
        if len(ordered) > 1
        else ordered * 99
    )
    return {f"p{point}": round(cuts[point - 1] * 1000, 1) for point in points} | {
        "max": round(ordered[-1] * 1000, 1)
    }
