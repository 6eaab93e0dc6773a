"""The stored-baseline gate fails closed: what it could not judge exits 12 unless --allow-unjudged accepts it."""

from pathlib import Path

import pytest

from harness.analyse.gate import compare_records, missing_cases
from harness.analyse.verdict import Policy
from harness.cli import main
from harness.errors import EXIT_HARNESS_ERROR, EXIT_REGRESSION, EXIT_UNJUDGED, HarnessError
from harness.options import RunOptions
from harness.publish.terminal import render_text_table
from harness.publish.verdicts import markdown, render_verdicts
from harness.session import RunSession
from harness.spec.selection import select
from harness.store.baselines import case_entry
from tests.test_baselines import ENV
from tests.test_cli_compare import results

EAGER, SDPA = "llama-tt-tiny-b1-p128-g64-fp32-eager", "llama-tt-tiny-b1-p128-g64-fp32-sdpa"
ALLOWED_LINE = "unknown --allow-unjudged kind 'noisey'; allowed: all, contended, env_mismatch, missing, no_baseline, noisy"


def case(case_id=EAGER, factors=(1.0,) * 12, status="ok", fingerprint="f1", preset="tiny", dtype="float32"):
    """A measured case as the plugin records it, with one e2e and TTFT sample per factor."""
    n = len(factors)
    return {
        "id": case_id, "family": case_id.partition("-")[0], "preset": preset, "dtype": dtype, "fingerprint": fingerprint,
        "status": status, "message": "machine stayed busy" if status == "contended" else "",
        "ttft_s": [0.004 * f * (1 + 0.001 * i) for i, f in enumerate(factors)],
        "tpot_s": [0.002 * f * (1 + 0.001 * i) for i, f in enumerate(factors) for _ in range(3)],
        "gen_lens": [4] * n, "e2e_s": [0.010 * f * (1 + 0.001 * i) for i, f in enumerate(factors)],
        "calibration_s": [0.003] * n, "peak_mem_bytes": 100 * 2**20,
    }


def gate(records, baseline_records, environment=ENV, **options):
    """The exit status RunSession.finish imposes on `records` against baselines made of `baseline_records`."""
    selection = select(RunOptions(benchmark=True, families="llama", **options), cuda_available=False)
    run = RunSession(selection, Path("."))
    run.records, run.environment, run.machine = list(records), environment, "cpu-amd-epyc-2c"
    run.baselines = {record["id"]: case_entry(record, ENV) for record in baseline_records}
    return run.finish(), run


SPREAD = (1.0, 1.6) * 6  # relative IQR far above 25%
UNJUDGED_RUNS = {  # kind -> (run's records, baseline records, extra options)
    "env_mismatch": ([case()], [case()], {}),
    "no_baseline": ([case()], [], {}),
    "no_baseline (definition changed)": ([case(fingerprint="f2")], [case()], {}),
    "noisy": ([case(factors=SPREAD)], [case(factors=SPREAD)], {}),
    "noisy (too few samples)": ([case(factors=(1.0,) * 3)], [case(factors=(1.0,) * 3)], {}),
    "contended": ([case(status="contended")], [case()], {}),
    "missing": ([case()], [case(), case(SDPA)], {}),
}


@pytest.mark.parametrize("label", list(UNJUDGED_RUNS))
def test_each_unjudged_kind_exits_12_and_its_allowance_exits_0(label):
    """Each verdict the gate cannot judge makes a passing run exit 12, and naming its kind in --allow-unjudged
    (or `all`) turns that into no imposed status while the verdicts stay reported."""
    kind = label.partition(" ")[0]
    records, baselines, options = UNJUDGED_RUNS[label]
    environment = {**ENV, "torch": "2.14.0"} if kind == "env_mismatch" else ENV
    status, run = gate(records, baselines, environment, **options)
    assert status == EXIT_UNJUDGED
    assert kind in {result.verdict.status for result in run.verdicts}
    for allowance in (kind, "all"):
        accepted, run = gate(records, baselines, environment, allow_unjudged=allowance)
        assert accepted is None, allowance
        assert kind in {result.verdict.status for result in run.verdicts}
    other = "noisy" if kind != "noisy" else "missing"
    assert gate(records, baselines, environment, allow_unjudged=other)[0] == EXIT_UNJUDGED


def test_too_few_samples_say_so():
    """Too few samples for the rank test are reported as such, not as an infinite detectable change."""
    _, run = gate([case(factors=(1.0,) * 3)], [case(factors=(1.0,) * 3)])
    (reason,) = {result.verdict.reason for result in run.verdicts if result.metric == "e2e_s"}
    assert reason.startswith("too few samples (3 baseline, 3 current) for the rank test to reach alpha 0.001")


def test_allowed_environment_fields_are_judged_not_unjudged():
    """--allow-env-diff keeps its meaning: a named field may differ, the case is judged and nothing fails."""
    status, run = gate([case()], [case()], {**ENV, "torch": "2.14.0"}, allow_env_diff="torch")
    assert status is None and {result.verdict.status for result in run.verdicts} == {"unchanged"}


def test_a_regression_beats_unjudged_cases():
    """A regression exits 11 even when other cases could not be judged."""
    slow = case(SDPA, factors=(1.8,) * 12)
    status, run = gate([case(fingerprint="f2"), slow], [case(), case(SDPA)])
    assert status == EXIT_REGRESSION
    assert {"regressed", "no_baseline"} <= {result.verdict.status for result in run.verdicts}


def test_updating_baselines_is_not_gated(tmp_path):
    """--update-baselines on a machine class without baselines records them and imposes no status."""
    status, run = gate([case()], [], update_baselines=True, baseline_dir=str(tmp_path))
    assert status is None and run.verdicts == []
    assert (tmp_path / "cpu-amd-epyc-2c" / "llama.json").exists()


def test_unknown_allowance_is_one_line_listing_the_allowed_kinds(tmp_path, capsys):
    """An unknown --allow-unjudged name is a harness error (exit 10 from the CLI) naming every allowed kind in
    one line."""
    with pytest.raises(HarnessError, match=ALLOWED_LINE):
        select(RunOptions(allow_unjudged="noisy,noisey"), cuda_available=False)
    old = results(tmp_path, "a", case())
    new = results(tmp_path, "b", case())
    assert main(["compare", str(old), str(new), "--allow-unjudged", "noisey"]) == EXIT_HARNESS_ERROR
    assert capsys.readouterr().err == f"harness: error: {ALLOWED_LINE}\n"


def test_missing_cases_stay_within_the_runs_families_presets_and_dtypes():
    """A baseline case is missing only when the run measured its family, preset and dtype: other families',
    presets' (also a preset whose name extends the run's) and dtypes' baselines are not reported."""
    baselines = {case_id: {} for case_id in (
        EAGER, SDPA, "llama-tt-tiny-b2-lognormal-p64-g16-fp32-draft-sdpa", "llama-tt-small-b1-p128-g64-fp32-sdpa",
        "llama-tt-tiny-b1-p128-g64-bf16-sdpa", "hstu-rank-tiny-b1-p128-g64-fp32-sdpa",
    )}
    assert missing_cases([case()], baselines) == [
        "llama-tt-tiny-b1-p128-g64-fp32-sdpa", "llama-tt-tiny-b2-lognormal-p64-g16-fp32-draft-sdpa"]
    paper = "llama-tt-paper-b1-p128-g64-fp32-eager"
    assert missing_cases([case(paper, preset="paper")], {paper: {}, "llama-tt-paper-7b-b1-p128-g64-fp32-sdpa": {}}) == []
    verdicts = compare_records([case()], {EAGER: case_entry(case(), ENV), SDPA: case_entry(case(SDPA), ENV)}, ENV, Policy())
    assert {(r.case_id, r.verdict.reason) for r in verdicts if r.verdict.status == "missing"} == {
        (SDPA, "in the baseline, not in this run")}


def test_compare_fails_closed_on_a_case_new_lacks(tmp_path, capsys):
    """`harness compare` exits 12 when NEW lacks a case OLD measured, says which and which allowance accepts it,
    and exits 0 with that allowance."""
    old = results(tmp_path / "old", "a", case(), case(SDPA))
    new = results(tmp_path / "new", "b", case())
    assert main(["compare", str(old), str(new)]) == EXIT_UNJUDGED
    out = capsys.readouterr().out
    assert "not judged: 1 case(s): exit 12; --allow-unjudged missing would accept them" in out
    assert SDPA in out and "in the baseline, not in this run" in out
    assert main(["compare", str(old), str(new), "--allow-unjudged", "missing"]) == 0
    assert "all accepted by --allow-unjudged missing, no exit 12" in capsys.readouterr().out


def test_summary_names_unjudged_cases_counts_never_recorded_ones_and_the_allowance():
    """The terminal and Markdown summaries say how many cases were not judged, the exit status, each kind's
    cases and allowance, and only count the never-recorded cases."""
    _, run = gate([case(), case(SDPA, status="contended")], [])
    text = render_text_table(render_verdicts(run.verdicts, "t"), width=200)
    summary = markdown(run.verdicts, "t")
    for report in (text, summary):
        assert "not judged: 2 case(s): exit 12; --allow-unjudged no_baseline,contended would accept them" in report
        assert "no_baseline: 1 case(s)" in report and "(accept with --allow-unjudged no_baseline): 1 never recorded" in report
        assert f"(accept with --allow-unjudged contended): {SDPA}" in report
        assert EAGER not in report  # never recorded: counted, not listed
    accepted = markdown(run.verdicts, "t", ("no_baseline", "contended"))
    assert "**not judged: 2 case(s): all accepted by --allow-unjudged no_baseline,contended, no exit 12**" in accepted
