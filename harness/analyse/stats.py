"""Pure statistics over raw samples. No I/O, no torch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise


def min_samples_for_quantile(q: float) -> int:
    """Samples needed before a quantile is reported: at least two beyond it (p90 -> 20)."""
    if not 0 <= q < 1:
        raise ValueError(f"quantile must be in [0, 1): {q}")
    return math.ceil(round(2 / (1 - q), 9))  # round: 2 / 0.1 is 20.000000000000004 in floats


def quantile(samples: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default method)."""
    if not samples:
        raise ValueError("quantile of no samples")
    ordered = sorted(samples)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(samples: Sequence[float]) -> float:
    return quantile(samples, 0.5)


def reported_quantile(samples: Sequence[float], q: float) -> float | None:
    """The quantile, or None when there are too few samples for it to mean anything."""
    return quantile(samples, q) if len(samples) >= min_samples_for_quantile(q) else None


def decode_intervals(marks_s: Sequence[float]) -> list[float]:
    """Per-token decode times from cumulative marks (first mark = first token)."""
    return [later - earlier for earlier, later in pairwise(marks_s)]


def speedup(baseline_s: Sequence[float], candidate_s: Sequence[float]) -> float | None:
    """Median-over-median speed-up; > 1 means the candidate is faster."""
    if not baseline_s or not candidate_s:
        return None
    return median(baseline_s) / median(candidate_s)
