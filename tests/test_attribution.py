"""Attributing a changed phase to the operator categories that moved."""

import pytest

from harness.analyse.attribution import attribute, phase_seconds, profile_of
from harness.analyse.gate import compare_case
from harness.analyse.verdict import Policy
from harness.publish.verdicts import markdown
from harness.store.baselines import case_entry


def profile(linear_s, attention_s, idle_frac, wall_s, phase="decode"):
    return {"breakdown": {phase: {"linear": linear_s, "attention": attention_s}},
            "idle_frac": {phase: idle_frac}, "profile_wall_s": {phase: wall_s}}


BEFORE = profile(0.010, 0.004, 0.2, 0.020)


def test_phase_seconds_include_idle():
    """A phase's seconds per operator category include its idle time, and a phase never profiled has none."""
    assert phase_seconds(BEFORE, "decode") == pytest.approx({"linear": 0.010, "attention": 0.004, "idle": 0.004})
    assert phase_seconds(BEFORE, "prefill") is None


def test_a_regression_names_the_categories_that_grew_largest_first():
    """A regression is attributed to the operator categories that grew, largest first."""
    after = profile(0.0103, 0.004, 0.25, 0.0235)  # linear +0.3 ms, idle 4.0 -> 5.875 ms
    text = attribute("tpot_s", BEFORE, after, regressed=True)
    assert text == "profiled iteration: decode +3.50 ms: idle +1.88 ms, linear +0.30 ms"


def test_an_improvement_names_the_categories_that_shrank():
    """An improvement is attributed to the operator categories that shrank."""
    after = profile(0.006, 0.004, 0.2, 0.015)
    assert attribute("tpot_s", BEFORE, after, regressed=False) == "profiled iteration: decode -5.00 ms: linear -4.00 ms, idle -1.00 ms"


def test_an_e2e_change_is_attributed_over_a_familys_own_stages():
    """A changed e2e is explained over the stages that moved its way, a family's own (here a vocoder) included."""
    def staged(vocoder_linear_s):
        return {"breakdown": {"encoder": {"conv": 0.002}, "decode": {"linear": 0.004},
                              "vocoder": {"conv": 0.001, "linear": vocoder_linear_s}},
                "idle_frac": {"encoder": 0.0, "decode": 0.1, "vocoder": 0.0},
                "profile_wall_s": {"encoder": 0.002, "decode": 0.005, "vocoder": 0.001 + vocoder_linear_s}}

    text = attribute("e2e_s", staged(0.001), staged(0.004), regressed=True)
    assert text == "profiled iteration: vocoder +3.00 ms: linear +3.00 ms"
    assert attribute("tpot_s", staged(0.001), staged(0.004), regressed=True) == "profiled iteration: decode +0.00 ms"


def test_a_tpot_change_is_attributed_to_a_familys_per_token_stages():
    """TPOT is explained over the stages that run once per token: SeamlessM4T's decoder steps and its beams' KV reorder."""
    def seamless(reorder_s):
        return {"breakdown": {"text_decoder_steps": {"linear": 0.004}, "kv_reorder": {"kv_cache": reorder_s}, "vocoder": {"conv": 0.01}},
                "idle_frac": {"text_decoder_steps": 0.0, "kv_reorder": 0.0, "vocoder": 0.0},
                "profile_wall_s": {"text_decoder_steps": 0.004, "kv_reorder": reorder_s, "vocoder": 0.01}}

    text = attribute("tpot_s", seamless(0.001), seamless(0.003), regressed=True)
    assert text == "profiled iteration: text_decoder_steps +0.00 ms; kv_reorder +2.00 ms: kv_cache +2.00 ms"


def test_no_profile_on_either_side_attributes_nothing():
    """Nothing is attributed when one side has no profile or the metric is not a phase's time."""
    assert attribute("tpot_s", {}, BEFORE, regressed=True) == ""
    assert attribute("peak_mem_bytes", BEFORE, BEFORE, regressed=True) == ""


def test_e2e_covers_both_phases():
    """End-to-end time is attributed over every phase, the ones that did not move its way left out."""
    prefill = profile(0.002, 0.001, 0.1, 0.004, phase="prefill")
    both_before = {k: {**prefill[k], **BEFORE[k]} for k in BEFORE}
    slower_prefill = profile(0.004, 0.001, 0.1, 0.006, phase="prefill")
    both_after = {k: {**slower_prefill[k], **BEFORE[k]} for k in BEFORE}
    text = attribute("e2e_s", both_before, both_after, regressed=True)
    assert text == "profiled iteration: prefill +2.00 ms: linear +2.00 ms, idle +0.20 ms"


def _record(e2e_scale, prof):
    return {"id": "c", "fingerprint": "f", "status": "ok", "ttft_s": [0.01] * 12,
            "tpot_s": [0.001 * e2e_scale] * 12 * 9, "gen_lens": [10] * 12, "e2e_s": [0.02 * e2e_scale + i * 1e-5 for i in range(12)],
            "calibration_s": [], "peak_mem_bytes": 0, **prof}


def test_a_baseline_keeps_the_profile_and_a_regressed_verdict_is_attributed():
    """A baseline keeps the case's profile, so a regressed metric is attributed in the verdict and the report
    while an unchanged one is not."""
    entry = case_entry(_record(1.0, BEFORE), {})
    assert entry["profile"] == profile_of(_record(1.0, BEFORE))
    slower = _record(1.5, profile(0.018, 0.004, 0.2, 0.030))
    results = {r.metric: r for r in compare_case(slower, entry, {}, Policy(normalize=False))}
    assert results["e2e_s"].verdict.status == "regressed"
    assert "decode +10.00 ms: linear +8.00 ms" in results["e2e_s"].attribution
    assert "linear +8.00 ms" in markdown(list(results.values()), "t")
    assert results["ttft_s"].attribution == ""  # unchanged: nothing to explain
