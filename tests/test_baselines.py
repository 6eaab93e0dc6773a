"""Baseline store and comparison: merging, fingerprints, environments, bad files."""

import json

import pytest

from harness.analyse.gate import compare_records, metric_samples, regressions
from harness.analyse.verdict import Policy
from harness.store.baselines import BASELINE_KIND, baseline_path, load_baseline, load_baselines, update_baselines
from harness.store.machine import machine_class
from harness.store.records import SCHEMA_VERSION, RecordError

ENV = {"device_name": "AMD EPYC", "gpu_count": 0, "driver_version": None, "cuda_version": None,
       "torch": "2.13.0+cpu", "transformers": "5.24.0", "cpu_model": "AMD EPYC", "cpu_cores": 2}


def record(case_id="llama-a-eager", scale=1.0, status="ok", fingerprint="f1", family="llama"):
    n = 12
    return {
        "id": case_id, "family": family, "fingerprint": fingerprint, "status": status, "message": "",
        "ttft_s": [0.004 * scale * (1 + 0.001 * i) for i in range(n)],
        "tpot_s": [0.002 * scale * (1 + 0.001 * i) for i in range(n * 3)],
        "gen_lens": [4] * n,
        "e2e_s": [0.010 * scale * (1 + 0.001 * i) for i in range(n)],
        "calibration_s": [0.003] * n,
        "peak_mem_bytes": 100 * 2**20,
    }


def test_machine_class_from_environment():
    """The machine class is derived from the environment: CPU model and core count, or GPU count and name."""
    assert machine_class(ENV) == "cpu-amd-epyc-2c"
    assert machine_class({**ENV, "gpu_count": 8, "device_name": "NVIDIA H100 80GB HBM3"}) == "gpu-8x-nvidia-h100-80gb-hbm3"


def test_update_merges_cases_and_never_keeps_failures(tmp_path):
    """Updating a baseline merges new cases into the stored ones, replaces a re-measured case, never keeps a
    failed one, and writes sorted keys."""
    update_baselines(tmp_path, "m", [record("a"), record("b", status="error")], ENV)
    update_baselines(tmp_path, "m", [record("c"), record("a", scale=2)], ENV)
    data = load_baseline(baseline_path(tmp_path, "m", "llama"))
    assert sorted(data["cases"]) == ["a", "c"]
    assert data["cases"]["a"]["samples"]["e2e_s"][0] == pytest.approx(0.020)
    assert data["schema_version"] == SCHEMA_VERSION and data["kind"] == BASELINE_KIND
    text = baseline_path(tmp_path, "m", "llama").read_text()
    assert text.index('"cases"') < text.index('"family"'), "keys are sorted"


def test_tpot_is_judged_per_iteration():
    """TPOT is judged on one median per iteration, taken over that iteration's token gaps."""
    samples = {"tpot_s": [1, 2, 3, 10, 20, 30], "gen_lens": [4, 4]}
    assert metric_samples(samples, "tpot_s") == [2, 20]


def compare(tmp_path, current, baseline_records, env=ENV, allowed=(), policy=Policy()):
    update_baselines(tmp_path, "m", baseline_records, ENV)
    return compare_records(current, load_baselines(tmp_path, "m", ["llama"]), env, policy, allowed)


def test_same_samples_are_unchanged_and_slowdown_regresses(tmp_path):
    """Identical samples are unchanged, and a 30% slowdown regresses every time metric."""
    same = compare(tmp_path, [record()], [record()])
    assert {r.verdict.status for r in same} == {"unchanged"}
    slower = compare(tmp_path, [record(scale=1.3)], [record()])
    assert {r.metric for r in regressions(slower)} == {"ttft_s", "tpot_s", "e2e_s"}


def test_a_metric_the_case_never_has_gets_no_verdict(tmp_path):
    """A metric a case never has gets no verdict, while one that disappeared since the baseline is still
    judged."""
    recommender = dict(record(), ttft_s=[], tpot_s=[])  # HSTU: no tokens, no TTFT or TPOT
    found = compare(tmp_path, [recommender], [recommender])
    assert [r.metric for r in found] == ["e2e_s", "peak_mem_bytes"]
    lost = compare(tmp_path / "lost", [dict(record(), ttft_s=[])], [record()])
    assert "ttft_s" in [r.metric for r in lost]  # a metric that disappeared is still judged


def test_machine_speed_factor_removes_drift_but_not_regressions(tmp_path):
    """Normalizing by the calibration probe removes a whole-machine slowdown but not a slowdown of the code on
    top of it."""
    drifted = {**record(scale=1.3), "calibration_s": [0.0039] * 12}  # whole machine 30% slower
    results = compare(tmp_path, [drifted], [record()], policy=Policy(normalize=True))
    assert not regressions(results)
    assert "probe 1.300x the baseline's" in results[0].verdict.reason
    code_slower = {**record(scale=1.3 * 1.3), "calibration_s": [0.0039] * 12}
    assert regressions(compare(tmp_path, [code_slower], [record()], policy=Policy(normalize=True)))


def test_normalization_is_per_iteration():
    """Normalization scales each iteration's time by its own probe and leaves memory unscaled."""
    from harness.analyse.gate import normalized

    # iteration 2 ran while the machine was twice as slow: its probe says so, and it is scaled back
    assert normalized([1.0, 2.0, 1.0], "e2e_s", [0.5, 1.0, 0.5], reference_s=0.5) == [1.0, 1.0, 1.0]
    assert normalized([7.0], "peak_mem_bytes", [1.0], reference_s=0.5) == [7.0]


def test_changed_definition_is_no_baseline(tmp_path):
    """A case whose fingerprint changed has no baseline, and the reason says its definition changed."""
    results = compare(tmp_path, [record(fingerprint="f2", scale=2)], [record()])
    assert {r.verdict.status for r in results} == {"no_baseline"}
    assert "definition changed" in results[0].verdict.reason


def test_environment_mismatch_lists_fields_unless_allowed(tmp_path):
    """An environment mismatch names each changed field with both values, and allowed fields are compared
    anyway."""
    env = {**ENV, "torch": "2.14.0", "transformers": "5.30.0"}
    results = compare(tmp_path, [record(scale=2)], [record()], env=env)
    assert {r.verdict.status for r in results} == {"env_mismatch"}
    assert results[0].verdict.reason == "torch: 2.13.0+cpu -> 2.14.0; transformers: 5.24.0 -> 5.30.0"
    allowed = compare(tmp_path, [record()], [record()], env=env, allowed=("torch", "transformers"))
    assert {r.verdict.status for r in allowed} == {"unchanged"}


def test_errored_case_is_reported_not_compared(tmp_path):
    """An errored case is reported as an error, not compared against its baseline."""
    results = compare(tmp_path, [record(status="error")], [record()])
    assert {r.verdict.status for r in results} == {"error"}


def baseline_text(**changes):
    samples = {"ttft_s": [1.0], "tpot_s": [], "e2e_s": [1.0], "gen_lens": [2], "calibration_s": [], "peak_mem_bytes": None}
    case = {"fingerprint": "f", "environment": {}, "samples": samples}
    data = {"kind": BASELINE_KIND, "schema_version": SCHEMA_VERSION, "cases": {"c": case}}
    for key, value in changes.items():
        if key.startswith("case_"):
            case[key[5:]] = value
        else:
            data[key] = value
    return json.dumps(data)


BAD = {
    "corrupt": ("{{{", "not valid JSON"),
    "truncated": (baseline_text()[:40], "not valid JSON"),
    "foreign": (json.dumps({"benchmarks": [], "version": "5.1"}), "not a harness-baseline file"),
    "newer-schema": (baseline_text(schema_version=SCHEMA_VERSION + 5), "newer than this harness reads"),
    "hand-edited-samples": (baseline_text(case_samples={"ttft_s": ["fast"]}), "case 'c': samples.ttft_s must be a list"),
    "hand-edited-fingerprint": (baseline_text(case_fingerprint=None), "case 'c': fingerprint missing"),
    "negative-sample": (
        baseline_text(case_samples={"ttft_s": [-1], "tpot_s": [], "e2e_s": [], "gen_lens": [], "calibration_s": []}), "positive finite"
    ),
    "zero-sample": (
        baseline_text(case_samples={"ttft_s": [0.0], "tpot_s": [], "e2e_s": [], "gen_lens": [], "calibration_s": []}), "positive finite"
    ),
    "nan": (baseline_text().replace("[1.0]", "[NaN]", 1), "NaN is not allowed"),
    "cases-list": (baseline_text(cases=[]), "'cases' missing or not an object"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_baseline_files_name_file_and_problem_and_stay_untouched(tmp_path, name):
    """A bad baseline file is refused on load and on update, naming the file and the problem, and is left
    untouched."""
    text, problem = BAD[name]
    path = baseline_path(tmp_path, "m", "llama")
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(RecordError) as info:
        load_baselines(tmp_path, "m", ["llama"])
    assert str(path) in str(info.value) and problem in str(info.value)
    with pytest.raises(RecordError):
        update_baselines(tmp_path, "m", [record()], ENV)
    assert path.read_text() == text


def test_time_thresholds_depend_on_the_device():
    """Default thresholds and normalization depend on the device, and an explicit per-metric threshold
    overrides them."""
    from harness.spec.selection import device_policy

    cpu, cuda = device_policy("cpu", 0.001, "auto", ""), device_policy("cuda:0", 0.001, "auto", "")
    assert cpu.for_metric("tpot_s").threshold_frac == 0.3 and cuda.for_metric("tpot_s").threshold_frac == 0.05
    assert cpu.for_metric("ttft_s").threshold_frac == 0.75 and cuda.for_metric("ttft_s").threshold_frac == 0.05
    assert cpu.for_metric("peak_mem_bytes").threshold_frac == 0.4 and cuda.for_metric("peak_mem_bytes").threshold_frac == 0.05
    assert cpu.normalize and not cuda.normalize
    assert device_policy("cpu", 0.001, "off", "tpot_s=0.1").for_metric("tpot_s").threshold_frac == 0.1
