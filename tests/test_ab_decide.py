"""The A/B gate's pure parts (harness/ab/schedule.py, decide.py, report.py): the ABBA schedule,
the paired ratio test against independent computations, early stopping's error rates in
simulation, and the exit status of every verdict."""

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import ttest_1samp

from harness.ab.decide import DECIDED, IMPROVED, INCONCLUSIVE, REGRESSED, UNCHANGED, UNDECIDED, Rule, decide
from harness.ab.driver import CONTENDED, FAILED, MISMATCH, ONE_SIDED, CaseState, case_verdict, pair_logs
from harness.ab.report import exit_status, markdown, record, savings
from harness.ab.schedule import abba_orders, case_order, round_iterations
from harness.errors import EXIT_REGRESSION, EXIT_UNJUDGED

SHORT = Rule(min_pairs=4, max_pairs=16)


@given(st.integers(1, 40), st.integers(0, 2**32))
def test_the_side_order_is_abba(pairs, seed):
    """Pairs alternate which side goes first, so the flattened sequence reads ABBAABBA... or BAABBAAB..."""
    orders = abba_orders(pairs, seed)
    flat = "".join(side[0] for order in orders for side in order)
    start = flat[:2]
    expected = (start + start[::-1]) * pairs
    assert flat == expected[: 2 * pairs]
    assert all(sorted(order) == ["base", "head"] for order in orders)


def test_the_schedule_is_seeded():
    """The same seed gives the same side and case orders; over seeds both sides go first sometimes."""
    assert abba_orders(8, 5) == abba_orders(8, 5)
    assert {abba_orders(1, seed)[0] for seed in range(20)} == {("base", "head"), ("head", "base")}
    ids = [f"case-{index}" for index in range(6)]
    assert case_order(ids, 3, 1) == case_order(list(reversed(ids)), 3, 1)
    assert len({tuple(case_order(ids, pair, 1)) for pair in range(10)}) > 1


def test_round_iterations_cycle_through_the_draws():
    """Pair p times draws p*k .. p*k+k-1 (modulo the draws), the same for both sides."""
    assert round_iterations(0, 2, 12) == [0, 1]
    assert round_iterations(5, 2, 12) == [10, 11]
    assert round_iterations(6, 2, 12) == [0, 1]
    assert round_iterations(2, 3, 4) == [2, 3, 0]
    with pytest.raises(ValueError):
        round_iterations(0, 0, 12)


def test_the_ratio_test_matches_an_independent_t_test():
    """Ratio, p value and decision on hand-made log ratios agree with scipy's one-sample t test."""
    logs = [0.10, 0.12, 0.08, 0.10]
    found = decide(logs, SHORT)
    assert found.ratio == pytest.approx(math.exp(0.10))
    assert found.p_slower == pytest.approx(ttest_1samp(logs, 0.0, alternative="greater").pvalue)
    # mean 0.10 > log 1.05, and p = 0.00059 < 0.01 / 5 looks (at 4, 6, 9, 14, 16 pairs): regressed after 4
    assert SHORT.look_points == (4, 6, 9, 14, 16)
    assert found.p_slower == pytest.approx(0.000587, rel=0.01)
    assert found.status == REGRESSED
    assert decide([-x for x in logs], SHORT).status == IMPROVED
    assert decide([*logs, 0.1], SHORT).status == UNDECIDED  # 5 pairs: between looks


def test_the_looks_grow_geometrically_to_the_maximum():
    """The default rule looks at 6, 9, 14, 21 and 32 pairs; a rule of one size looks once."""
    assert Rule().look_points == (6, 9, 14, 21, 32)
    assert Rule(min_pairs=3, max_pairs=3).look_points == (3,)


def test_unchanged_needs_the_interval_inside_the_threshold():
    """Small, tight log ratios are unchanged; the same mean with a wide spread stays undecided, then inconclusive."""
    tight = [0.002, -0.003, 0.001, 0.0, -0.001, 0.0005]
    assert decide(tight, Rule()).status == UNCHANGED
    wide = [0.06, -0.06, 0.05, -0.05, 0.0, 0.01]
    assert decide(wide, Rule()).status == UNDECIDED
    final = decide(wide, Rule(), final=True)
    assert final.status == INCONCLUSIVE and "too noisy" in final.reason
    assert decide([0.0, 0.0], Rule(), final=True).status == INCONCLUSIVE  # too few pairs


def test_a_significant_change_under_the_threshold_is_not_a_regression():
    """HEAD 2% slower with little noise: significant, but under the 5% threshold: unchanged."""
    logs = [math.log(1.02) + d for d in (0.001, -0.001, 0.0005, -0.0005, 0.0, 0.0002)]
    found = decide(logs, Rule())
    assert found.p_slower < 1e-6
    assert found.status == UNCHANGED


def sequential(effect: float, sigma: float, rule: Rule, rng: random.Random) -> str:
    logs: list[float] = []
    for n in range(1, rule.max_pairs + 1):
        logs.append(rng.gauss(math.log1p(effect), sigma))
        found = decide(logs, rule, final=n == rule.max_pairs)
        if found.status in DECIDED or n == rule.max_pairs:
            return found.status
    raise AssertionError("unreachable")


@pytest.mark.parametrize("sigma", [0.03, 0.06, 0.10])
def test_early_stopping_keeps_its_error_rates(sigma):
    """Simulated per-pair log-ratio noise (sd 3%, 6% and 10%, as measured on the shared CPU): with the
    sequential looks, false alarms stay at or under 1% per metric, +10% is caught in at least 95%, and
    +5% in at least 40% (half and more up to 6%)."""
    rule, trials = Rule(), {0.0: 3000, 0.05: 600, 0.10: 600}
    rates = {}
    for effect, count in trials.items():
        rng = random.Random(f"{sigma}:{effect}")
        rates[effect] = sum(sequential(effect, sigma, rule, rng) == REGRESSED for _ in range(count)) / count
    # 1% plus two standard errors of a 3000-trial estimate: the bound is exact (Bonferroni), the estimate is not
    assert rates[0.0] <= 0.01 + 2 * math.sqrt(0.01 * 0.99 / trials[0.0])
    assert rates[0.10] >= 0.95
    assert rates[0.05] >= (0.5 if sigma <= 0.06 else 0.4)


def test_pair_logs_take_the_median_over_the_chunk():
    """One pair's log ratio per metric is the median of the per-iteration log ratios; metrics one side lacks are left out."""
    base = [{"e2e_s": 1.0, "ttft_s": 0.1}, {"e2e_s": 2.0, "ttft_s": 0.1}, {"e2e_s": 1.0, "ttft_s": 0.1}]
    head = [{"e2e_s": 1.1, "ttft_s": 0.1}, {"e2e_s": 2.4, "ttft_s": 0.1}, {"e2e_s": 3.0}]
    found = pair_logs(base, head)
    assert set(found) == {"e2e_s"}
    assert found["e2e_s"] == pytest.approx(math.log(1.2))


def state(status="done", **decisions) -> CaseState:
    found = CaseState("case", "workload", status=status)
    found.decisions = {m: decide(logs, SHORT, final=True) for m, logs in decisions.items()}
    return found


UNCHANGED_LOGS = [0.001, -0.001, 0.0, 0.0005]
REGRESSED_LOGS = [0.10, 0.12, 0.08, 0.10]
NOISY_LOGS = [0.2, -0.2, 0.1, -0.1]


@pytest.mark.parametrize(("states", "expected"), [
    ([state(e2e_s=UNCHANGED_LOGS)], 0),
    ([state(e2e_s=UNCHANGED_LOGS), state(e2e_s=[-x for x in REGRESSED_LOGS])], 0),
    ([state(e2e_s=UNCHANGED_LOGS, tpot_s=REGRESSED_LOGS)], EXIT_REGRESSION),
    ([state(e2e_s=NOISY_LOGS)], EXIT_UNJUDGED),
    ([state(CONTENDED)], EXIT_UNJUDGED),
    ([state(ONE_SIDED)], EXIT_UNJUDGED),
    ([state(e2e_s=REGRESSED_LOGS), state(e2e_s=NOISY_LOGS)], EXIT_REGRESSION),
    ([state(e2e_s=REGRESSED_LOGS), state(MISMATCH)], 1),
    ([state(FAILED)], 1),
])
def test_exit_status_fails_closed(states, expected):
    """Regressed exits 11, anything not judged 12 (never 0), a failed or changed-answer case 1; only unchanged and improved pass."""
    assert exit_status(states) == expected


def test_the_record_and_markdown_say_what_was_judged():
    """The record counts verdicts and pairs; the Markdown names the test, the threshold and each case's verdict."""
    regressed = state(e2e_s=REGRESSED_LOGS)
    regressed.pair_wall_s, regressed.attempts = [0.5] * 4, 4
    contended = CaseState("other", "workload", status=CONTENDED, message="not judged: 9 pairs contended")
    sides = {name: {"label": name, "commit": "0" * 40, "python": "python"} for name in ("base", "head")}
    data = record(sides, {}, {}, SHORT, [regressed, contended], 12.0)
    assert case_verdict(regressed) == REGRESSED
    assert data["counts"] == {REGRESSED: 1, CONTENDED: 1}
    assert data["exit_status"] == EXIT_REGRESSION
    assert savings([regressed], SHORT) == {"cases": 1, "pairs_used": 4, "pairs_max": 16, "contended_pairs": 0, "saved_s": 6.0}
    text = markdown(data, [regressed, contended])
    assert "t tests on the per-pair log ratios" in text and "threshold 5%" in text
    assert "| case | e2e_s | regressed | 1.105 |" in text
    assert "not judged: 9 pairs contended" in text
