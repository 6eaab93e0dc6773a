"""The lever ladder: interval arithmetic, chain building, and the table and chart it makes."""

import math
import random
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analyse.ladder import (
    ALL_FAMILIES,
    Interval,
    across_runs,
    follows,
    geomean_interval,
    ladder,
    longest_chain,
    paired_speedup_interval,
    speedup_interval,
    summarize,
)
from harness.cli import main
from harness.store.records import ResultsFile

times = st.lists(st.floats(1e-4, 10.0), min_size=3, max_size=15)
factors = st.floats(0.1, 10.0)
SLOTS = {"eager": "attention", "sdpa": "attention", "static": "cache", "compile": "compile",
         "padded": "layout", "jagged": "layout", "fixed": "layout", "flex": "pointwise"}


@given(times, times, factors)
def test_speedup_is_scale_free_and_inside_its_interval(base, cand, scale):
    """The speed-up estimate is unchanged when both sides are scaled alike, and lies inside its interval when
    that is bounded."""
    plain = speedup_interval(base, cand)
    scaled = speedup_interval([b * scale for b in base], [c * scale for c in cand])
    assert scaled.estimate == pytest.approx(plain.estimate, rel=1e-9)
    if plain.bounded:
        assert plain.low <= plain.estimate <= plain.high


@given(times, times)
def test_swapping_sides_inverts_the_speedup(base, cand):
    """Swapping the sides inverts the speed-up estimate and the interval's bounds."""
    forward, backward = speedup_interval(base, cand), speedup_interval(cand, base)
    assert forward.estimate * backward.estimate == pytest.approx(1.0, rel=1e-9)
    if forward.bounded:
        assert forward.low * backward.high == pytest.approx(1.0, rel=1e-9)


def test_a_constant_ratio_is_exact():
    """A constant ratio gives a speed-up interval of zero width at that ratio."""
    assert speedup_interval([2.0] * 5, [1.0] * 5) == Interval(pytest.approx(2.0), pytest.approx(2.0), pytest.approx(2.0))


def test_interval_cut_points_by_hand():
    """The interval's bounds and estimate are the order statistics of the pairwise log differences that the
    rank test picks."""
    # n = m = 5: k = floor(25/2 - 1.96 * sqrt(25 * 11 / 12)) = floor(3.12) = 3 differences cut from each end.
    base, cand = [10.0, 11.0, 12.0, 13.0, 14.0], [5.0, 6.0, 7.0, 8.0, 9.0]
    diffs = sorted(math.log(b) - math.log(c) for b in base for c in cand)
    found = speedup_interval(base, cand)
    assert found.low == pytest.approx(math.exp(diffs[3])) and found.high == pytest.approx(math.exp(diffs[21]))
    assert found.estimate == pytest.approx(math.exp(diffs[12]))


def test_too_few_samples_leave_the_interval_open():
    """Too few samples leave both the paired and the unpaired interval open."""
    assert not speedup_interval([1.0, 1.1], [0.5, 0.6]).bounded
    assert not paired_speedup_interval([1.0, 1.1], [0.5, 0.6]).bounded


def _unpaired_draws(rng, true_speedup):
    noise = [rng.lognormvariate(0, 0.1) for _ in range(24)]
    return noise[:12], [n / true_speedup for n in noise[12:]]


def _paired_draws(rng, true_speedup):
    lengths = [rng.uniform(0.5, 2.0) for _ in range(12)]  # the same inputs on both sides
    return ([n * rng.lognormvariate(0, 0.1) for n in lengths],
            [n / true_speedup * rng.lognormvariate(0, 0.1) for n in lengths])


@pytest.mark.parametrize("interval, draws", [(speedup_interval, _unpaired_draws), (paired_speedup_interval, _paired_draws)])
def test_intervals_cover_the_true_speedup_about_95_percent_of_the_time(interval, draws):
    """The paired and unpaired intervals cover the true speed-up in about 95% of simulated trials."""
    rng = random.Random(7)
    true_speedup, trials = 1.5, 400
    covered = sum(found.low <= true_speedup <= found.high
                  for found in (interval(*draws(rng, true_speedup)) for _ in range(trials)))
    assert 0.90 <= covered / trials <= 0.99


def test_pairing_removes_the_spread_of_the_lengths():
    """Pairing removes the spread of differing input lengths, which widens the unpaired interval."""
    lengths = [1.0, 3.0, 0.5, 2.0, 5.0, 0.8, 1.5, 4.0, 2.5, 0.6]
    base = [n * (1 + 0.01 * i) for i, n in enumerate(lengths)]
    cand = [b / 2 for b in base]
    paired, unpaired = paired_speedup_interval(base, cand), speedup_interval(base, cand)
    assert paired.estimate == pytest.approx(2.0) and paired.high / paired.low < 1.001
    assert unpaired.high / unpaired.low > 2


def test_geomean_of_intervals():
    """The geometric mean of intervals combines their log half-widths in quadrature."""
    z = 1.959963984540054
    a, b = 0.2, 0.4  # log half-widths
    found = geomean_interval([Interval(2.0, 2 * math.exp(-a), 2 * math.exp(a)), Interval(8.0, 8 * math.exp(-b), 8 * math.exp(b))])
    assert found.estimate == pytest.approx(4.0)
    half = z * math.sqrt((a / z) ** 2 + (b / z) ** 2) / 2
    assert found.low == pytest.approx(4 * math.exp(-half)) and found.high == pytest.approx(4 * math.exp(half))


@given(st.floats(0.1, 10), st.floats(0.01, 1))
def test_geomean_of_one_is_itself(estimate, half):
    """The geometric mean of one interval is that interval."""
    one = Interval(estimate, estimate * math.exp(-half), estimate * math.exp(half))
    found = geomean_interval([one])
    assert (found.estimate, found.low, found.high) == pytest.approx((one.estimate, one.low, one.high))


def test_geomean_with_an_open_interval_stays_open():
    """A geometric mean over an open interval is open."""
    assert not geomean_interval([Interval(2.0, 1.5, 2.5), Interval(3.0, None, None)]).bounded


def test_steps_add_a_lever_or_swap_a_baseline_lever_in_its_slot():
    """A ladder step adds one lever or swaps the baseline's lever in its slot, and never goes back to the
    baseline's lever or adds two at once."""
    slot = SLOTS.get
    base = frozenset({"eager"})
    assert follows(base, frozenset({"sdpa"}), base, slot)
    assert follows(frozenset({"sdpa"}), frozenset({"sdpa", "static"}), base, slot)
    assert not follows(frozenset({"sdpa"}), frozenset({"eager"}), base, slot)  # never back to the baseline's lever
    assert not follows(frozenset({"sdpa"}), frozenset({"sdpa", "static", "compile"}), base, slot)
    assert not follows(frozenset({"fixed"}), frozenset({"jagged"}), frozenset({"padded"}), slot)


def _record(stack, e2e_s, family="llama", status="ok", match=True):
    return {"stack": stack, "workload_id": f"{family}-w", "family": family, "task": "tt", "status": status,
            "outputs_match": match, "e2e_s": e2e_s, "tpot_s": [x / 10 for x in e2e_s]}


def _run(stacks_and_medians, family="llama"):
    rng = random.Random(3)
    return [_record(stack, [m * rng.uniform(0.97, 1.03) for _ in range(10)], family) for stack, m in stacks_and_medians]


def test_the_decoder_ladder_is_the_longest_cumulative_chain():
    """The decoder ladder is the longest cumulative chain from the baseline, shows a step that slows down, and
    lists the stacks left off it with why."""
    records = _run([("eager", 10), ("sdpa", 8), ("sdpa+static", 9), ("sdpa+compile", 3), ("sdpa+static+compile", 2)])
    found = ladder(records, "eager", SLOTS.get)
    assert [s.stack for s in found.steps] == ["eager", "sdpa", "sdpa+static", "sdpa+static+compile"]
    assert [s.added for s in found.steps] == ["", "sdpa", "static", "compile"]
    assert found.steps[2].step.estimate == pytest.approx(8 / 9, rel=0.05)  # a step may slow down: shown
    assert found.combined.estimate == pytest.approx(5.0, rel=0.05)
    assert ("sdpa+compile", "not on the longest cumulative chain") in found.left_out


def test_the_recommender_ladder_swaps_its_layout():
    """The recommender ladder swaps the baseline's layout before adding levers."""
    records = _run([("padded", 8), ("jagged", 4), ("fixed", 20), ("fixed+compile", 6), ("fixed+flex", 7)], "hstu")
    assert [s.stack for s in ladder(records, "padded", SLOTS.get).steps] == ["padded", "fixed", "fixed+compile"]


def test_failed_or_changed_outputs_are_never_steps():
    """A stack whose outputs differ from the baseline stack's is never a step and is listed as left out with
    why."""
    records = _run([("eager", 10), ("sdpa", 8)]) + [_record("sdpa+static", [1.0] * 10, match=False)]
    found = ladder(records, "eager", SLOTS.get)
    assert [s.stack for s in found.steps] == ["eager", "sdpa"]
    assert ("sdpa+static", "outputs differ from the baseline stack's") in found.left_out


def test_no_ladder_without_a_measured_baseline():
    """Without a measured baseline stack there is no ladder."""
    assert ladder(_run([("sdpa", 8), ("sdpa+static", 9)]), "eager", SLOTS.get) is None


@given(st.permutations(["eager", "sdpa", "sdpa+static", "sdpa+compile", "sdpa+static+compile"]))
def test_chains_never_loop_and_each_step_follows(order):
    """The longest chain, whatever the order of the stacks, visits no stack twice and each step follows the
    one before."""
    stacks = [frozenset(s.split("+")) for s in order]
    chain = longest_chain(frozenset({"eager"}), stacks, SLOTS.get)
    assert len(chain) == len(set(chain)) == 4
    assert all(follows(a, b, frozenset({"eager"}), SLOTS.get) for a, b in pairwise(chain))


def test_summary_per_family_and_across_families():
    """The summary gives each family's combined speed-up and their geometric mean across families."""
    llama = _run([("eager", 10), ("sdpa", 5)])
    hstu = [dict(r, workload_id="hstu-w") for r in _run([("padded", 8), ("fixed", 2)], "hstu")]
    summary = summarize(llama + hstu)
    assert set(summary.per_family) == {"llama", "hstu"}
    assert summary.per_family["llama"].estimate == pytest.approx(2.0, rel=0.05)
    assert summary.overall.estimate == pytest.approx(math.sqrt(2.0 * 4.0), rel=0.05)


def test_cli_prints_the_ladder_and_writes_its_chart(tmp_path, capsys):
    """`harness ladder` prints each family's ladder and writes its chart as PNG and SVG."""
    results = ResultsFile(tmp_path / "run-x.json", {}, {})
    for record in _run([("eager", 10), ("sdpa", 8), ("sdpa+static", 9), ("sdpa+static+compile", 2)]):
        results.add(dict(record, id=f"llama-w-{record['stack']}"))
    assert main(["ladder", str(results.path), "--out", str(tmp_path / "charts")]) == 0
    out = capsys.readouterr().out
    assert "+compile" in out and "llama: combined" in out
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == ["run-x-ladder.png", "run-x-ladder.svg"]


def _summary(speedup, family="llama"):
    return summarize(_run([("eager", 10), ("sdpa", 10 / speedup)], family))


def test_across_runs_is_a_t_interval_on_the_runs_logs():
    """Across runs, a family's interval is a t interval on the logs of the runs' combined speed-ups."""
    # The three quiet CPU runs of session 2: 1.74x, 1.51x, 1.77x.
    found = across_runs([_summary(1.74), _summary(1.51), _summary(1.77)])
    values = found.per_run["llama"]
    logs = [math.log(v) for v in values]
    center = sum(logs) / 3
    sd = math.sqrt(sum((x - center) ** 2 for x in logs) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2 degrees of freedom), by table
    interval = found.interval["llama"]
    assert interval.estimate == pytest.approx(math.exp(center))
    assert (interval.low, interval.high) == (pytest.approx(math.exp(center - half)), pytest.approx(math.exp(center + half)))
    assert found.per_run[ALL_FAMILIES] == values  # one family: the overall is its figure


def test_across_runs_is_wider_than_one_runs_interval_when_runs_disagree():
    """When runs disagree, the interval across runs is wider than one run's own interval."""
    runs = [_summary(1.74), _summary(1.51), _summary(1.77)]
    within = runs[0].per_family["llama"]
    between = across_runs(runs).interval["llama"]
    assert between.high / between.low > within.high / within.low


def test_one_run_leaves_the_across_runs_interval_open():
    """A single run leaves the interval across runs open."""
    assert not across_runs([_summary(2.0)]).interval["llama"].bounded


def test_runs_that_climbed_different_ladders_are_refused():
    """Runs that climbed different ladders are refused, naming the family."""
    other = summarize(_run([("eager", 10), ("sdpa", 5), ("sdpa+static", 4)]))
    with pytest.raises(ValueError, match="llama: the runs climbed different ladders"):
        across_runs([_summary(2.0), other])


def test_cli_prints_the_ladder_across_runs(tmp_path, capsys):
    """`harness ladder` prints the interval across runs only with --across-runs, and refuses it for a single
    run."""
    paths = []
    for index, speedup in enumerate((1.74, 1.51, 1.77)):
        results = ResultsFile(tmp_path / f"run-{index}.json", {}, {})
        for record in _run([("eager", 10), ("sdpa", 10 / speedup)]):
            results.add(dict(record, id=f"llama-w-{record['stack']}"))
        paths.append(str(results.path))
    assert main(["ladder", *paths, "--out", str(tmp_path / "charts")]) == 0
    assert "across" not in capsys.readouterr().out  # only when asked: a folder may mix matrices
    assert main(["ladder", *paths, "--out", str(tmp_path / "charts"), "--across-runs"]) == 0
    out = capsys.readouterr().out
    assert "across 3 runs" in out and "all families" in out
    assert main(["ladder", paths[0], "--across-runs"]) == 10


def test_cli_refuses_a_ladder_across_different_matrices(tmp_path, capsys):
    """`harness ladder --across-runs` refuses runs whose ladders differ, while each run's own ladder still
    prints."""
    paths = []
    for index, stacks in enumerate(([("eager", 10), ("sdpa", 5)], [("eager", 10), ("sdpa", 5), ("sdpa+static", 4)])):
        results = ResultsFile(tmp_path / f"run-{index}.json", {}, {})
        for record in _run(stacks):
            results.add(dict(record, id=f"llama-w-{record['stack']}"))
        paths.append(str(results.path))
    assert main(["ladder", *paths]) == 0  # each run's own ladder is fine
    assert main(["ladder", *paths, "--across-runs"]) == 10
    assert "climbed different ladders" in capsys.readouterr().err
