"""What a prefill computes, how a changed TTFT definition moves fingerprints, and the overhead
measurement's own arithmetic (harness/measure/overhead.py) on stand-in loops.

`lm_head_shapes` is shared with the families' tests (test_runner, test_chameleon, test_seamless,
test_speculative), which record the LM head's output shapes during one tiny generation.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import pytest
import torch

from harness.families import FAMILIES
from harness.measure.overhead import Subject, Timed, measure_overhead, summary_line
from harness.measure.pairs import run_rounds
from harness.spec.matrix import Case, fingerprint
from harness.spec.workload import Lengths


@contextmanager
def lm_head_shapes(model):
    """The output shape of every call of `model.lm_head` inside the block, in call order."""
    shapes: list[tuple[int, ...]] = []
    handle = model.lm_head.register_forward_hook(lambda module, args, output: shapes.append(tuple(output.shape)))
    try:
        yield shapes
    finally:
        handle.remove()


# -- fingerprints move with a family's measurement definition ------------------------------------
LLAMA = Case("llama", "tt", "tiny", "float32", 1, Lengths(128, 64), ("sdpa",))
SEAMLESS = Case("seamless", "tt", "tiny", "float32", 1, Lengths(16, 16), ("sdpa",), beams=1)
MODEL = {"hidden_size": 128}


def fingerprint_now(case: Case) -> str:
    """The fingerprint a run records: with its family's measurement version."""
    return fingerprint(case, MODEL, FAMILIES[case.family].measurement_version)


def fingerprint_before_issue_20(case: Case, monkeypatch) -> str:
    """The fingerprint as it was computed before any family's measurement was redefined."""
    return fingerprint(case, MODEL)


def test_a_redefined_familys_fingerprint_moves_and_the_others_stay(monkeypatch):
    """A family with a measurement version (Llama, whose TTFT now excludes full-prompt logits) gets a
    fingerprint its old baselines cannot match, while a family without one keeps its fingerprint."""
    assert FAMILIES["llama"].measurement_version >= 2 and not FAMILIES["seamless"].measurement_version
    assert fingerprint_now(LLAMA) != fingerprint_before_issue_20(LLAMA, monkeypatch)
    assert fingerprint_now(SEAMLESS) == fingerprint_before_issue_20(SEAMLESS, monkeypatch)
    assert fingerprint_now(LLAMA) == fingerprint_now(Case.from_dict(LLAMA.to_dict()))  # still stable


def test_an_old_llama_baseline_reads_no_baseline_not_an_improvement(monkeypatch):
    """A Llama baseline recorded under the old TTFT definition is judged no_baseline by the gate, not an
    improvement, though its TTFT samples are twice the new ones."""
    from harness.analyse.gate import compare_case
    from harness.analyse.policy import Policy
    from harness.analyse.verdict import NO_BASELINE

    record = {"id": LLAMA.id, "status": "ok", "fingerprint": fingerprint_now(LLAMA), "ttft_s": [0.01] * 20}
    old = {"fingerprint": fingerprint_before_issue_20(LLAMA, monkeypatch), "environment": {}, "samples": {"ttft_s": [0.02] * 20}}
    verdicts = compare_case(record, old, {}, Policy())
    assert verdicts and {result.verdict.status for result in verdicts} == {NO_BASELINE}
    assert "definition changed" in verdicts[0].verdict.reason


# -- rounds of more than two sides -----------------------------------------------------------------
def test_rounds_rotate_which_side_runs_first():
    """Each round of three sides starts one side later, so that over three rounds every side runs in every position."""
    calls: list[str] = []
    sides = {name: (lambda name=name: calls.append(name) or name) for name in "abc"}
    found = run_rounds(sides, 4)
    assert calls == list("abc" "bca" "cab" "abc")
    assert found == {name: [name] * 4 for name in "abc"}
    with pytest.raises(ValueError, match="at least two"):
        run_rounds({"a": lambda: 1}, 1)


# -- the overhead measurement on stand-in loops ----------------------------------------------------
def stand_in(seconds: dict[str, tuple[float, float]], tokens: dict[str, list[int]] | None = None) -> Subject:
    """Sides that return fixed TTFT and TPOT seconds and tokens, with a little made-up noise per call."""
    calls = {name: 0 for name in seconds}

    def side(name):
        def call() -> Timed:
            calls[name] += 1
            wobble = 1 + 0.01 * math.sin(calls[name])
            ttft, tpot = seconds[name]
            return Timed(ttft * wobble, tpot * wobble, torch.tensor([(tokens or {}).get(name, [1, 2, 3])]))
        return call

    return Subject("stand-in", {name: side(name) for name in seconds})


def test_overhead_ratios_are_harness_over_each_other_side_with_intervals():
    """The measurement reports, per other side, harness / other for TTFT and TPOT with an interval around the
    true ratio, the medians of each side, and whether every side chose the harness's tokens."""
    subject = stand_in({"harness": (2.0, 1.1), "bare": (1.0, 1.0), "generate": (4.0, 2.2)}, {"generate": [1, 2, 4]})
    found = measure_overhead(subject, 12)
    assert found["ttft_ratio_vs_bare"] == pytest.approx(2.0, rel=0.03)
    assert found["tpot_ratio_vs_bare"] == pytest.approx(1.1, rel=0.03)
    assert found["ttft_ratio_vs_generate"] == pytest.approx(0.5, rel=0.03)
    for key in ("ttft_ratio_vs_bare", "tpot_ratio_vs_bare", "tpot_ratio_vs_generate"):
        assert found[f"{key}_low"] <= found[key] <= found[f"{key}_high"]
    assert len(found["harness_ttft_s"]) == len(found["bare_tpot_s"]) == 12
    assert found["bare_ttft_s_p50"] == pytest.approx(1.0, rel=0.02)
    assert found["tokens_match"] == {"bare": True, "generate": False}
    assert found["deterministic"]
    line = summary_line(found, "stand-in")
    assert "harness/bare: TTFT 2.0" in line and "harness/generate: TTFT 0.5" in line


def test_a_quick_check_has_ratios_without_intervals():
    """With the quick checks' couple of rounds the ratios are reported and their intervals are marked absent,
    not made up."""
    found = measure_overhead(stand_in({"harness": (1.0, 1.0), "bare": (1.0, 1.0)}), 2)
    assert found["ttft_ratio_vs_bare"] == pytest.approx(1.0, rel=0.03)
    assert found["ttft_ratio_vs_bare_low"] is None and found["tpot_ratio_vs_bare_high"] is None
    assert "no interval" in summary_line(found, "stand-in")


def test_a_paired_experiments_figures_reach_the_results_file(tmp_path):
    """Under --benchmark a paired experiment's note reaches the run's notes and its figures the results file,
    beside its (here empty) case records."""
    import json
    from types import SimpleNamespace

    from harness.measure.pairs import PairedExperiment
    from harness.session import RunSession
    from harness.store.records import ResultsFile, load_results

    options = SimpleNamespace(benchmark=True)
    run = RunSession.__new__(RunSession)  # no selection needed: only the notes and the results file
    run.notes, run.experiments = [], []
    run.results = ResultsFile(tmp_path / "run.json", {}, {})
    fixture = SimpleNamespace(extra_info={})
    experiment = PairedExperiment.__new__(PairedExperiment)
    experiment.run, experiment.family, experiment.options = run, "llama", options
    experiment._benchmark_fixture, experiment._benchmark = (lambda: fixture), None
    experiment.record({"ttft_ratio_vs_bare": 1.01, "tokens_match": {"bare": True}}, "overhead llama: ...", name="timing_overhead")
    assert fixture.extra_info["ttft_ratio_vs_bare"] == 1.01
    assert run.notes[0] == "overhead llama: ..." and str(run.results.path) in run.notes[1]
    written = load_results(run.results.path)
    assert written["cases"] == []
    (entry,) = written["experiments"]
    assert entry == {"family": "llama", "name": "timing_overhead", "note": "overhead llama: ...",
                     "figures": {"ttft_ratio_vs_bare": 1.01, "tokens_match": {"bare": True}}}
    json.loads(run.results.path.read_text())  # plain JSON
