"""Interleaved rounds (harness/measure/rounds.py, harness/measure/workload.py): the schedule, the
per-round paired ratios, the contention guard, its re-run budget and the sequential fall-back."""

import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analyse.ladder import round_pairs, step_interval
from harness.families import FAMILIES
from harness.measure import case as case_module
from harness.measure import rounds as rounds_module
from harness.measure import workload as workload_module
from harness.measure.rounds import Guard, RoundLog, chunks, quiet_reference_s, rerun_budget, round_orders, run_figures, verdict
from harness.measure.workload import WorkloadRun
from harness.spec.matrix import expand

QUIET_S, BUSY_S = 0.001, 0.005


@given(st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=7, unique=True), st.integers(0, 2**32))
def test_every_stack_runs_in_every_position_equally_often(stacks, seed):
    """Over as many rounds as stacks, each stack runs once per round and once in each position."""
    orders = round_orders(stacks, len(stacks), seed)
    assert all(sorted(order) == sorted(stacks) for order in orders)
    for position in range(len(stacks)):
        assert sorted(order[position] for order in orders) == sorted(stacks)


def test_the_order_rotates_and_is_seeded():
    """Each round's order is the previous one rotated by one; the same seed gives the same schedule, another
    seed another shuffle."""
    stacks = ["eager", "sdpa", "sdpa+static", "sdpa+static+compile"]
    orders = round_orders(stacks, 6, seed=3)
    for before, after in zip(orders, orders[1:], strict=False):
        assert after == before[1:] + before[:1]
    assert round_orders(stacks, 6, seed=3) == orders
    assert {round_orders(stacks, 1, seed)[0] for seed in range(20)} != {orders[0]}


def test_iterations_split_into_equal_rounds_or_fail():
    """Twelve iterations split into four rounds of three; five rounds are refused."""
    assert [list(chunk) for chunk in chunks(12, 4)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11]]
    with pytest.raises(ValueError, match="equal rounds"):
        chunks(12, 5)


def test_guard_marks_a_planted_probe_outlier():
    """Two probe readings over the ratio times the quiet reference mark the round contended, naming the
    slowest; a lone spike, readings just under the ratio and an off guard do not."""
    reference = quiet_reference_s([0.0010, 0.0011, 0.0030, 0.0010, 0.0012])  # one busy warm-up reading
    assert reference == pytest.approx(0.0010)
    guard = Guard(reference, ratio=1.5)
    assert guard.reason([0.0010, 0.00149, 0.00149]) == ""
    assert guard.reason([0.0010, 0.0040, 0.0011]) == ""  # a lone spike (the VM's steal time)
    reason = guard.reason([0.0010, 0.0040, 0.0031])
    assert "2 probe(s) up to 4.00 ms = 4.00x the quiet 1.00 ms" in reason
    assert guard.reason([0.0040]) != ""  # a single reading (waiting for quiet) is judged alone
    assert guard.reason([0.0010], ["GPU throttled (hw_slowdown)"]) == "GPU throttled (hw_slowdown)"
    assert Guard(reference, ratio=0).reason([1.0], ["GPU throttled"]) == ""


def test_a_workload_is_contended_when_too_few_rounds_stay_clean():
    """Eight of twelve rounds clean is enough; seven is not, and the reason counts them."""
    logs = [RoundLog(i, ("a",), [QUIET_S], contended="" if i < 8 else "busy") for i in range(12)]
    assert verdict(logs, 12) == ""
    logs[7].contended = "busy"
    assert verdict(logs, 12).startswith("contended: 5 of 12 rounds stayed contended")


def record(rounds, totals_of_iterations, executed):
    """A case record measured in interleaved rounds: two iterations per round."""
    e2e = [seconds for pair in totals_of_iterations for seconds in pair]
    return {"rounds": {"mode": rounds, "executed": executed}, "round_index": [i // 2 for i in range(len(e2e))], "e2e_s": e2e}


def test_paired_ratio_interval_matches_a_hand_computation():
    """Per round the baseline's total over the candidate's (2, 2, 2, 2, 4); the Walsh averages of their logs
    have median log 2 and, with five rounds, the whole range as the 95% interval: 2.0 [2.0, 4.0]."""
    executed = [{"index": i} for i in range(5)]
    baseline = record("interleaved", [(0.5, 1.5)] * 4 + [(1.0, 3.0)], executed)
    candidate = record("interleaved", [(0.5, 0.5)] * 5, executed)  # per-iteration ratios 1 and 3: not what is paired
    assert round_pairs(baseline, candidate) == ([2.0, 2.0, 2.0, 2.0, 4.0], [1.0] * 5)
    found = step_interval(baseline, candidate)
    # 15 Walsh averages: ten of log 2, four of 1.5 log 2, one of 2 log 2; the 8th is log 2.
    # Wilcoxon at n=5: k = floor(15/2 - 1.96 * sqrt(5*6*11/24)) = floor(0.23) = 0: min and max.
    assert (found.estimate, found.low, found.high) == pytest.approx((2.0, 2.0, 4.0))


def test_rounds_of_another_run_or_a_sequential_workload_are_not_paired():
    """Round pairing needs the same executed rounds in interleaved mode; otherwise the step falls back."""
    executed = [{"index": i} for i in range(3)]
    baseline = record("interleaved", [(1.0, 1.0)] * 3, executed)
    assert round_pairs(baseline, record("interleaved", [(0.5, 0.5)] * 3, executed[:2] + [{"index": 9}])) is None
    assert round_pairs(baseline, record("sequential", [(0.5, 0.5)] * 3, executed)) is None


class PlantedProbe:
    """Machine-speed probe readings: quiet, except during the rounds listed as busy (three probe calls per
    round of two stacks: before each stack and after the last)."""

    def __init__(self, busy_rounds):
        self.busy_rounds = set(busy_rounds)
        self.calls = 0

    def workload_probe(self, repeats=1):
        if repeats > 1:  # the reference burst before the rounds
            return [QUIET_S] * repeats
        round_number = self.calls // 3
        self.calls += 1
        return [BUSY_S if round_number in self.busy_rounds else QUIET_S]


@pytest.fixture
def two_stacks():
    cases, _ = expand(FAMILIES["llama"], "tiny", ("float32",), "cpu", only_stacks=("eager", "sdpa"))
    first = cases[0].workload_id
    return [case for case in cases if case.workload_id == first]


def measure_with(monkeypatch, ctx_factory, cases, busy_rounds, planted=None, wait_s=0.0, **options):
    """Measure the cases with planted probe readings (no waiting for quiet unless `wait_s`)."""
    planted = planted or PlantedProbe(busy_rounds)
    monkeypatch.setattr(case_module, "probe_s", lambda repeats=1: [QUIET_S] * repeats)
    monkeypatch.setattr(workload_module, "probe_s", planted.workload_probe)
    ctx = ctx_factory(**{"iterations": 4, "warmup": 1, "contention_ratio": 1.5, **options})
    return WorkloadRun(cases, ctx, quiet_wait_budget_s=wait_s).run()


def test_a_contended_round_is_rerun_and_left_out(monkeypatch, ctx_factory, two_stacks):
    """A planted busy first round is re-run once at the end; the samples come from the four clean rounds, in
    schedule order, and the record keeps all five executed rounds with the contended one's reason."""
    results = measure_with(monkeypatch, ctx_factory, two_stacks, busy_rounds={0})
    for result in results.values():
        assert result.status == "ok", result.message
        rounds = result.rounds
        assert (rounds["contended_rounds"], rounds["reruns"], rounds["clean_rounds"]) == (1, 1, 4)
        assert [log["index"] for log in rounds["executed"]] == [0, 1, 2, 3, 0]
        assert "5.00x the quiet" in rounds["executed"][0]["contended"]
        assert result.samples["round_index"] == [0, 1, 2, 3]
        assert len(result.samples["e2e_s"]) == 4
    orders = [tuple(log["order"]) for log in rounds["executed"]]
    assert orders == round_orders([case.stack_name for case in two_stacks], 5, seed=0)


def test_the_rerun_budget_ends_in_a_contended_workload(monkeypatch, ctx_factory, two_stacks):
    """Rounds busy throughout: half the round count is re-run (2 of 4), then every case is `contended`, with
    the reason, and no profile or verdict treats it as a finding."""
    results = measure_with(monkeypatch, ctx_factory, two_stacks, busy_rounds=range(100))
    assert rerun_budget(4) == 2
    for result in results.values():
        assert result.status == "contended"
        assert result.message.startswith("contended: 4 of 4 rounds stayed contended after 2 re-run(s)")
        assert len(result.rounds["executed"]) == 6
        assert len(result.samples["e2e_s"]) == 4  # kept for inspection: the last take of each round


def test_stacks_too_large_to_keep_warm_are_measured_one_after_another(monkeypatch, ctx_factory, two_stacks):
    """When the fit estimate says the stacks cannot stay warm together, each case runs its own rounds alone,
    the record says why, and the ladder does not pair their rounds."""
    monkeypatch.setattr(workload_module, "fit_together", lambda cases, device: (False, "planted: too large"))
    results = measure_with(monkeypatch, ctx_factory, two_stacks, busy_rounds=())
    eager, sdpa = (results[case.id] for case in two_stacks)
    for result in (eager, sdpa):
        assert result.status == "ok", result.message
        assert (result.rounds["mode"], result.rounds["why"]) == ("sequential", "planted: too large")
        assert all(log["order"] == [result.case.stack_name] for log in result.rounds["executed"])
    assert round_pairs(eager.to_record(), sdpa.to_record()) is None
    assert math.isfinite(step_interval(eager.to_record(), sdpa.to_record()).estimate)


def test_each_stack_gets_the_same_iterations_and_draws(monkeypatch, ctx_factory, two_stacks):
    """Interleaved, both stacks ran the same draws of lengths in the same rounds, one iteration per round."""
    results = measure_with(monkeypatch, ctx_factory, two_stacks, busy_rounds=())
    eager, sdpa = (results[case.id].samples for case in two_stacks)
    for key in ("prompt_lens", "gen_lens", "round_index"):
        assert eager[key] == sdpa[key]
    assert Counter(eager["round_index"]) == {0: 1, 1: 1, 2: 1, 3: 1}


def test_a_disturbed_profile_is_taken_again_then_marked_never_failed(monkeypatch, ctx_factory, two_stacks):
    """Probes bracketing the profiled iteration that read a busy machine make it taken three times in all;
    still disturbed, the profile is kept and marked, and the case stays ok."""
    takes = []
    real_profile_once = case_module.CaseRun._profile_once

    def counting(self, draw):
        takes.append(self.case.id)
        return real_profile_once(self, draw)

    monkeypatch.setattr(case_module.CaseRun, "_profile_once", counting)
    monkeypatch.setattr(case_module.CaseRun, "warmup_probe", lambda self: [QUIET_S])
    monkeypatch.setattr(case_module, "probe_s", lambda repeats=1: [BUSY_S] * repeats)
    monkeypatch.setattr(workload_module, "probe_s", lambda repeats=1: [QUIET_S] * repeats)
    ctx = ctx_factory(iterations=2, warmup=1, contention_ratio=1.5)
    result = WorkloadRun(two_stacks[:1], ctx).run()[two_stacks[0].id]
    assert result.status == "ok", result.message
    assert takes == [two_stacks[0].id] * case_module.PROFILE_TAKES
    record = result.to_record()
    assert "5.00x the quiet" in record["profile_contended"]
    assert any("disturbed by the machine in all 3 takes" in note for note in record["profile_notes"])


class BusyCalls(PlantedProbe):
    """Busy for the listed probe calls (counting every single reading: rounds and waits alike)."""

    def __init__(self, busy_calls):
        super().__init__(())
        self.busy_calls = set(busy_calls)

    def workload_probe(self, repeats=1):
        if repeats > 1:
            return [QUIET_S] * repeats
        self.calls += 1
        return [BUSY_S if self.calls - 1 in self.busy_calls else QUIET_S]


def test_after_a_contended_round_the_next_waits_for_a_quiet_machine(monkeypatch, ctx_factory, two_stacks):
    """Round 1 busy, then two busy readings while waiting: the next round starts after the third (quiet)
    reading, records its wait, and only the contended round is re-run."""
    monkeypatch.setattr(rounds_module, "QUIET_POLL_S", 0.0)
    planted = BusyCalls(busy_calls={0, 1, 2, 3, 4})  # round 1's three readings, then two while waiting
    results = measure_with(monkeypatch, ctx_factory, two_stacks, (), planted=planted, wait_s=5.0)
    rounds = next(iter(results.values())).rounds
    assert [bool(log["contended"]) for log in rounds["executed"]] == [True, False, False, False, False]
    assert rounds["executed"][1]["waited_s"] > 0 and rounds["executed"][2]["waited_s"] == 0
    assert planted.calls == 3 + 3 + 3 * 4  # the round, the wait's three readings, four more rounds


def test_run_figures_count_shared_and_own_rounds():
    """An interleaved workload's cases share one rounds entry, counted once; a sequential workload's cases
    each count their own; contended cases are named."""
    shared = {"mode": "interleaved", "executed": [{}] * 5, "contended_rounds": 1, "reruns": 1}
    own = {"mode": "sequential", "executed": [{}] * 3, "contended_rounds": 0, "reruns": 0}
    records = [
        {"id": "a-eager", "workload_id": "a", "rounds": shared, "status": "ok"},
        {"id": "a-sdpa", "workload_id": "a", "rounds": shared, "status": "contended"},
        {"id": "b-eager", "workload_id": "b", "rounds": own, "status": "ok"},
        {"id": "b-sdpa", "workload_id": "b", "rounds": dict(own), "status": "ok"},
        {"id": "c-eager", "workload_id": "c", "rounds": {}, "status": "mismatch"},
    ]
    assert run_figures(records) == {"workloads": 2, "rounds": 11, "contended": 1, "reruns": 1, "sequential": 1,
                                    "contended_cases": ["a-sdpa"]}
