"""The A/B verdict of one case and metric, from its per-round-pair log ratios (HEAD over BASE).

The test: Student's t on the log ratios, one-sided in each direction. A metric is
  - `regressed` when HEAD is slower by more than the threshold (the geometric-mean ratio is over
    1 + threshold) AND the t test says slower at the per-look level;
  - `improved` the same way round (ratio under 1 / (1 + threshold), significantly faster);
  - `unchanged` when the interval at the per-look level lies inside [1/(1+t), 1+t]: any change
    is smaller than the threshold;
  - undecided otherwise: more pairs are measured, up to the maximum; then `inconclusive`.
Sequential looks would inflate the error rates, so there are few of them (at `min_pairs`, then
each about LOOK_GROWTH times the last, up to `max_pairs`) and each spends an equal share of
them (Bonferroni over the looks): false alarms stay under `alpha` per metric, and a change of the
threshold's size is called `unchanged` at most `beta` of the time, however early the case stops
(simulated in tests/test_ab_decide.py; docs/ab.md).
Pure functions, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from scipy.stats import t as student_t

REGRESSED, IMPROVED, UNCHANGED, INCONCLUSIVE, UNDECIDED = "regressed", "improved", "unchanged", "inconclusive", "undecided"
DECIDED = (REGRESSED, IMPROVED, UNCHANGED)
TEST_NAME = "one-sided t tests on the per-pair log ratios (HEAD/BASE), Bonferroni over sequential looks"

DEFAULT_THRESHOLD = 0.05  # the 5%, on the CPU too: paired rounds see far below the CPU's between-process drift
DEFAULT_ALPHA = 0.01  # false alarms per metric, over all looks
DEFAULT_BETA = 0.05  # `unchanged` said of a change of the threshold's size, over all looks
# Looks at 6, 9, 14, 21 and 32 pairs. On the shared 2-core CPU one pair's log ratio spreads with a
# sd of 0.05-0.12 (docs/ab.md): 32 pairs hold a +10% change's estimate above the 5% threshold,
# and a clear change stops at the first looks.
DEFAULT_MIN_PAIRS = 6
DEFAULT_MAX_PAIRS = 32
LOOK_GROWTH = 1.5


@dataclass(frozen=True)
class Rule:
    """How the A/B verdicts are reached: threshold, error rates and the sequential looks."""

    threshold: float = DEFAULT_THRESHOLD
    alpha: float = DEFAULT_ALPHA
    beta: float = DEFAULT_BETA
    min_pairs: int = DEFAULT_MIN_PAIRS
    max_pairs: int = DEFAULT_MAX_PAIRS

    def __post_init__(self) -> None:
        if not (0 < self.threshold < 1 and 0 < self.alpha < 0.5 and 0 < self.beta < 0.5):
            raise ValueError(f"threshold in (0, 1) and alpha, beta in (0, 0.5) please; got {self}")
        if not 3 <= self.min_pairs <= self.max_pairs:
            raise ValueError(f"need 3 <= min_pairs <= max_pairs, got {self.min_pairs} and {self.max_pairs}")

    @property
    def look_points(self) -> tuple[int, ...]:
        """The pair counts at which the case is judged: min_pairs, then growing by LOOK_GROWTH, then max_pairs."""
        points = [self.min_pairs]
        while round(points[-1] * LOOK_GROWTH) < self.max_pairs:
            points.append(round(points[-1] * LOOK_GROWTH))
        return (*points, self.max_pairs) if points[-1] != self.max_pairs else tuple(points)

    @property
    def looks(self) -> int:
        return len(self.look_points)

    @property
    def bound(self) -> float:
        return math.log1p(self.threshold)


@dataclass(frozen=True)
class Decision:
    status: str
    pairs: int
    ratio: float | None = None  # geometric mean of HEAD/BASE over the pairs
    low: float | None = None  # the interval at the per-look level for `unchanged` (1 - beta / looks)
    high: float | None = None
    p_slower: float | None = None  # one-sided p of "HEAD is slower"
    reason: str = ""

    def to_dict(self) -> dict:
        return {"status": self.status, "pairs": self.pairs, "ratio": self.ratio, "low": self.low,
                "high": self.high, "p_slower": self.p_slower, "reason": self.reason}


def _moments(logs: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error; a spread of exactly zero is floored so that t stays finite."""
    n = len(logs)
    mean = sum(logs) / n
    var = sum((x - mean) ** 2 for x in logs) / (n - 1)
    return mean, max(math.sqrt(var / n), 1e-12)


def decide(logs: Sequence[float], rule: Rule, final: bool = False) -> Decision:
    """The verdict after len(logs) pairs; `final`: no more pairs will come (undecided becomes inconclusive)."""
    n = len(logs)
    if n not in rule.look_points and not final:
        return Decision(UNDECIDED, n, reason="between looks")
    if n < rule.min_pairs:
        why = f"too few pairs: {n} measured, {rule.min_pairs} needed"
        return Decision(INCONCLUSIVE if final else UNDECIDED, n, reason=why)
    mean, se = _moments(logs)
    df = n - 1
    p_slower = float(student_t.sf(mean / se, df))
    half = float(student_t.isf(rule.beta / rule.looks, df)) * se
    found = Decision(UNDECIDED, n, math.exp(mean), math.exp(mean - half), math.exp(mean + half), p_slower)
    level = rule.alpha / rule.looks
    if mean > rule.bound and p_slower < level:
        return replace(found, status=REGRESSED)
    if mean < -rule.bound and 1 - p_slower < level:
        return replace(found, status=IMPROVED)
    if -rule.bound < mean - half and mean + half < rule.bound:
        return replace(found, status=UNCHANGED)
    if not final:
        return found
    why = (f"too noisy to judge {rule.threshold:.0%} after {n} pairs: interval "
           f"[{found.low:.3f}, {found.high:.3f}] crosses a threshold")
    return replace(found, status=INCONCLUSIVE, reason=why)
