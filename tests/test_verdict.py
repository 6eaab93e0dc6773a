"""Verdict statistics on synthetic samples: false alarms, power, edge cases."""

import math
import random

import pytest

from harness.analyse.verdict import (
    IMPROVED,
    NO_BASELINE,
    NOISY,
    REGRESSED,
    UNCHANGED,
    MetricPolicy,
    Policy,
    judge,
    min_p_value,
    minimum_detectable_effect,
)
from harness.options import RunOptions

DEFAULT_N = RunOptions().iterations
SPREAD = 0.03  # lognormal sigma: realistic run-to-run noise of a quiet GPU box


def lognormal(rng, n, shift=0.0, sigma=SPREAD, base=0.010):
    return [base * (1 + shift) * math.exp(rng.gauss(0, sigma)) for _ in range(n)]


def detection_rate(shift: float, trials: int, seed: int) -> float:
    rng = random.Random(seed)
    policy = MetricPolicy()
    hits = sum(judge(lognormal(rng, DEFAULT_N), lognormal(rng, DEFAULT_N, shift), policy).status == REGRESSED for _ in range(trials))
    return hits / trials


def test_a_a_false_alarm_rate_is_below_one_percent():
    """Comparing samples from one distribution raises a false alarm in at most 1% of trials."""
    rng = random.Random(1)
    policy = MetricPolicy()
    trials = 3000
    alarms = sum(
        judge(lognormal(rng, DEFAULT_N), lognormal(rng, DEFAULT_N), policy).status in (REGRESSED, IMPROVED)
        for _ in range(trials)
    )
    assert alarms / trials <= 0.01


def test_power_for_a_ten_percent_slowdown_at_default_repetitions():
    """A 10% slowdown is detected at least 95% of the time at the default number of iterations."""
    assert detection_rate(0.10, trials=600, seed=2) >= 0.95


def test_power_for_five_percent_is_reported_not_promised():
    """A 5% slowdown, at the threshold, is detected sometimes but not reliably."""
    # docs/gating.md states the measured figure (about a third); a 5% change sits at the threshold.
    rate = detection_rate(0.05, trials=600, seed=3)
    assert 0.05 < rate < 0.8


def test_speedup_is_improved():
    """A 20% speed-up is judged improved."""
    rng = random.Random(4)
    assert judge(lognormal(rng, 12), lognormal(rng, 12, -0.2), MetricPolicy()).status == IMPROVED


def test_higher_is_better_flips_direction():
    """For a higher-is-better metric a drop is judged a regression."""
    rng = random.Random(5)
    policy = MetricPolicy(higher_is_better=True)
    assert judge(lognormal(rng, 12), lognormal(rng, 12, -0.2), policy).status == REGRESSED


def test_significant_but_small_change_is_unchanged():
    """A statistically significant change below the threshold is judged unchanged."""
    base = [1.00 + 0.001 * i for i in range(12)]
    current = [1.02 + 0.001 * i for i in range(12)]
    verdict = judge(base, current, MetricPolicy())
    assert verdict.p_value < 0.001 and verdict.status == UNCHANGED


def test_too_few_samples_are_noisy_with_infinite_mde():
    """Too few samples to reach significance are judged noisy, with an infinite minimum detectable effect."""
    verdict = judge([1.0, 1.1, 1.2], [2.0, 2.1, 2.2], MetricPolicy())
    assert verdict.status == NOISY and math.isinf(verdict.mde_frac)
    assert min_p_value(3, 3) == pytest.approx(0.1)


def test_high_spread_is_noisy():
    """Widely spread samples are judged noisy, with a large minimum detectable effect."""
    rng = random.Random(6)
    verdict = judge(lognormal(rng, 12, sigma=0.4), lognormal(rng, 12, sigma=0.4), MetricPolicy())
    assert verdict.status == NOISY and verdict.mde_frac > 0.1


def test_mde_shrinks_with_more_samples():
    """The minimum detectable effect shrinks as the number of samples grows."""
    rng = random.Random(7)
    small = minimum_detectable_effect(lognormal(rng, 12), lognormal(rng, 12), 0.001)
    large = minimum_detectable_effect(lognormal(rng, 200), lognormal(rng, 200), 0.001)
    assert large < small


def test_tied_samples_do_not_break_the_test():
    """Identical samples on both sides are judged unchanged."""
    assert judge([1.0] * 12, [1.0] * 12, MetricPolicy()).status == UNCHANGED


def test_no_baseline_samples():
    """Without baseline samples the verdict is no_baseline."""
    assert judge([], [1.0], MetricPolicy()).status == NO_BASELINE


@pytest.mark.parametrize(
    "base, current, status",
    [(100e6, 130e6, REGRESSED), (100e6, 104e6, UNCHANGED), (1e6, 5e6, UNCHANGED), (100e6, 50e6, IMPROVED)],
)
def test_single_value_metric_uses_threshold_and_floor(base, current, status):
    """A single-value metric such as peak memory is judged by its threshold and an absolute floor."""
    policy = Policy().for_metric("peak_mem_bytes")
    assert judge([base], [current], policy).status == status


def test_thresholds_are_configurable_per_metric():
    """A threshold set for one metric leaves the others at their default."""
    policy = Policy().with_thresholds({"ttft_s": 0.5})
    assert policy.for_metric("ttft_s").threshold_frac == 0.5
    assert policy.for_metric("e2e_s").threshold_frac == 0.05
