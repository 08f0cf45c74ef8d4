"""Summaries of latency samples: percentiles, medians, ratios."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks.

    With few samples the high percentiles are the largest samples, which is
    what a reader of p99 over 20 calls should expect.
    """
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Count, median, p95, p99 and maximum of a list of milliseconds."""
    return {
        "n": len(samples),
        "median": percentile(samples, 50),
        "p95": percentile(samples, 95),
        "p99": percentile(samples, 99),
        "max": max(samples) if samples else math.nan,
    }


def ratio(slow: float, fast: float) -> float:
    """How many times faster `fast` is than `slow` (nan when either is missing)."""
    if math.isnan(slow) or math.isnan(fast) or fast <= 0:
        return math.nan
    return slow / fast


def zipf_weights(n: int, s: float) -> list[float]:
    """Weights of ranks 1..n under Zipf's law with exponent `s`."""
    return [1 / rank**s for rank in range(1, n + 1)]
