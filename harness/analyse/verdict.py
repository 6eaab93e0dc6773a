"""Regression verdicts per metric: pure functions over raw samples.

A metric is `regressed` or `improved` only when BOTH a two-sided Mann-Whitney rank test is
significant at `alpha` AND the median moved by more than the metric's threshold. Otherwise it
is `unchanged`, or `noisy` when the data could not have shown a change of threshold size
(spread too high, or too few samples for the test to ever reach alpha).

The defaults and why they are what they are: harness/analyse/policy.py (each defined once).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import NormalDist

from scipy.stats import mannwhitneyu

from harness.analyse.policy import DEFAULT_ALPHA, DEFAULT_POWER, METRIC_POLICIES, MetricPolicy, Policy
from harness.analyse.stats import median

__all__ = ["METRIC_POLICIES", "MetricPolicy", "Policy", "Verdict", "judge"]

REGRESSED, IMPROVED, UNCHANGED, NOISY = "regressed", "improved", "unchanged", "noisy"
NO_BASELINE, ENV_MISMATCH, ERROR = "no_baseline", "env_mismatch", "error"
CONTENDED = "contended"  # not judged: the machine was busy through the case's rounds (harness.measure.rounds)
MISSING = "missing"  # not judged: a baseline case in the run's scope that the run did not measure (harness.analyse.gate)
VERDICTS = (REGRESSED, IMPROVED, UNCHANGED, NOISY, NO_BASELINE, MISSING, ENV_MISMATCH, CONTENDED, ERROR)
# The verdicts that mean "could not be judged": the gate fails closed on them (exit 12) unless
# --allow-unjudged names them. `error` is not among them: a failed case already fails its test.
UNJUDGED = (NO_BASELINE, MISSING, NOISY, CONTENDED, ENV_MISMATCH)

MAX_SPREAD_FRAC = 0.25  # relative IQR above which an unchanged verdict cannot be vouched for
NOISY_MDE_FACTOR = 2.0  # noisy when even twice the threshold would likely go unseen
MAD_TO_SIGMA = 1.4826
RANK_TEST_EFFICIENCY = 3 / math.pi  # Wilcoxon vs t-test on normal data


@dataclass(frozen=True)
class Verdict:
    status: str
    baseline_median: float | None = None
    current_median: float | None = None
    change_frac: float | None = None  # (current - baseline) / baseline
    p_value: float | None = None
    mde_frac: float | None = None  # smallest relative change this comparison could detect
    n_baseline: int = 0
    n_current: int = 0
    reason: str = ""


def min_p_value(n1: int, n2: int) -> float:
    """Smallest two-sided p the exact rank test can give for these sizes."""
    return min(1.0, 2 / math.comb(n1 + n2, n1))


def relative_sigma(samples: Sequence[float]) -> float:
    """Robust spread of log(samples): MAD scaled to a normal sigma; about the relative sd."""
    logs = [math.log(x) for x in samples]
    center = median(logs)
    return MAD_TO_SIGMA * median([abs(x - center) for x in logs])


def relative_iqr(samples: Sequence[float]) -> float:
    from harness.analyse.stats import quantile

    center = median(samples)
    return (quantile(samples, 0.75) - quantile(samples, 0.25)) / center if center else math.inf


def minimum_detectable_effect(baseline: Sequence[float], current: Sequence[float], alpha: float, power: float = DEFAULT_POWER) -> float:
    """Relative change detectable with `power` at `alpha` (normal approximation of the rank test)."""
    if min_p_value(len(baseline), len(current)) > alpha:
        return math.inf
    sigma = math.sqrt((relative_sigma(baseline) ** 2 + relative_sigma(current) ** 2) / 2)
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    log_effect = z * sigma * math.sqrt(1 / len(baseline) + 1 / len(current)) / math.sqrt(RANK_TEST_EFFICIENCY)
    return math.expm1(log_effect)


def _direction(change_frac: float, policy: MetricPolicy) -> str:
    worse = change_frac < 0 if policy.higher_is_better else change_frac > 0
    return REGRESSED if worse else IMPROVED


def judge(baseline: Sequence[float], current: Sequence[float], policy: MetricPolicy, alpha: float = DEFAULT_ALPHA) -> Verdict:
    """The verdict for one metric of one case."""
    if not baseline or not current:
        return Verdict(NO_BASELINE if not baseline else NOISY, reason="no samples")
    base_mid, cur_mid = median(baseline), median(current)
    change = (cur_mid - base_mid) / base_mid if base_mid else (0.0 if cur_mid == base_mid else math.inf)
    # The figures every verdict below carries; each return sets its status (and reason).
    common = Verdict(
        UNCHANGED, baseline_median=base_mid, current_median=cur_mid, change_frac=change, n_baseline=len(baseline),
        n_current=len(current),
    )
    beyond = abs(change) > policy.threshold_frac and abs(cur_mid - base_mid) > policy.min_abs_change
    if not policy.rank_test:
        return replace(common, status=_direction(change, policy) if beyond else UNCHANGED, reason="threshold only (one value per run)")
    p_value = float(mannwhitneyu(baseline, current, alternative="two-sided").pvalue)
    p_value = 1.0 if math.isnan(p_value) else p_value  # all samples tied
    mde = minimum_detectable_effect(baseline, current, alpha)
    found = replace(common, p_value=p_value, mde_frac=mde)
    if p_value < alpha and beyond:
        return replace(found, status=_direction(change, policy))
    if math.isinf(mde):  # no outcome of the rank test could reach alpha: say so, not "over ∞"
        reason = f"too few samples ({len(baseline)} baseline, {len(current)} current) for the rank test to reach alpha {alpha:g}"
        return replace(found, status=NOISY, reason=reason)
    if mde > NOISY_MDE_FACTOR * policy.threshold_frac:
        return replace(found, status=NOISY, reason=f"could only detect changes over {_pct(mde)}")
    spread = max(relative_iqr(baseline), relative_iqr(current))
    if spread > MAX_SPREAD_FRAC:
        return replace(found, status=NOISY, reason=f"spread {_pct(spread)} of the median")
    return found


def _pct(fraction: float) -> str:
    return "∞" if math.isinf(fraction) else f"{100 * fraction:.1f}%"
