"""Speed-ups with confidence intervals: Hodges-Lehmann estimates over pairwise log ratios (paired
or not), geometric means of intervals, and Student's t over repeated runs. Pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from harness.analyse.stats import median

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A speed-up (> 1: faster) with its confidence interval; bounds None with too few samples."""

    estimate: float
    low: float | None
    high: float | None

    @property
    def bounded(self) -> bool:
        return self.low is not None and self.high is not None


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1): {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def speedup_interval(baseline_s: Sequence[float], candidate_s: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Hodges-Lehmann speed-up of the candidate over the baseline, with its distribution-free
    interval (normal approximation of the Mann-Whitney U quantile)."""
    if not baseline_s or not candidate_s:
        raise ValueError("a speed-up needs samples on both sides")
    if min(*baseline_s, *candidate_s) <= 0:
        raise ValueError("times must be positive")
    diffs = sorted(math.log(b) - math.log(c) for b in baseline_s for c in candidate_s)
    n, m = len(baseline_s), len(candidate_s)
    estimate = math.exp(median(diffs))
    spread = math.sqrt(n * m * (n + m + 1) / 12)
    k = math.floor(n * m / 2 - _z(confidence) * spread)  # differences cut from each end
    if k < 0:
        return Interval(estimate, None, None)
    return Interval(estimate, math.exp(diffs[k]), math.exp(diffs[len(diffs) - 1 - k]))


def paired_speedup_interval(baseline_s: Sequence[float], candidate_s: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Speed-up from iterations paired by their input (the same draw of lengths on both sides):
    the Hodges-Lehmann estimate over Walsh averages of the per-pair log ratios, with the interval
    that inverts the Wilcoxon signed-rank test. Pairing removes the spread of the lengths."""
    if len(baseline_s) != len(candidate_s) or not baseline_s:
        raise ValueError("paired speed-up needs the same, non-zero number of samples on both sides")
    if min(*baseline_s, *candidate_s) <= 0:
        raise ValueError("times must be positive")
    logs = [math.log(b) - math.log(c) for b, c in zip(baseline_s, candidate_s, strict=True)]
    walsh = sorted((logs[i] + logs[j]) / 2 for i in range(len(logs)) for j in range(i, len(logs)))
    n = len(logs)
    estimate = math.exp(median(walsh))
    spread = math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    k = math.floor(len(walsh) / 2 - _z(confidence) * spread)
    if k < 0:
        return Interval(estimate, None, None)
    return Interval(estimate, math.exp(walsh[k]), math.exp(walsh[len(walsh) - 1 - k]))


def geomean_interval(intervals: Sequence[Interval], confidence: float = CONFIDENCE) -> Interval:
    """Geometric mean of independent speed-ups. Each interval's half-width in log space gives its
    standard error; the mean of F logs has the root-sum-square of the errors over F."""
    if not intervals:
        raise ValueError("a geometric mean needs at least one speed-up")
    logs = [math.log(i.estimate) for i in intervals]
    center = sum(logs) / len(logs)
    bounds = [(i.low, i.high) for i in intervals if i.low is not None and i.high is not None]
    if len(bounds) < len(intervals):
        return Interval(math.exp(center), None, None)
    z = _z(confidence)
    errors = [(math.log(high) - math.log(low)) / (2 * z) for low, high in bounds]
    half = z * math.sqrt(sum(e * e for e in errors)) / len(errors)
    return Interval(math.exp(center), math.exp(center - half), math.exp(center + half))


def log_t_interval(estimates: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Geometric mean of repeated runs' speed-ups, with Student's t interval on their logs: the
    runs are the samples, so the spread between runs (which one run's rank interval cannot see)
    sets the width. Bounds need two runs or more."""
    from scipy.stats import t

    if not estimates or min(estimates) <= 0:
        raise ValueError("needs positive speed-ups")
    logs = [math.log(value) for value in estimates]
    center = sum(logs) / len(logs)
    if len(logs) < 2:
        return Interval(math.exp(center), None, None)
    spread = math.sqrt(sum((x - center) ** 2 for x in logs) / (len(logs) - 1))
    half = t.ppf(0.5 + confidence / 2, len(logs) - 1) * spread / math.sqrt(len(logs))
    return Interval(math.exp(center), math.exp(center - half), math.exp(center + half))
