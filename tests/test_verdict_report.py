"""Verdict tables: a first run without baselines is one line, not a row per metric."""

from harness.analyse.gate import UNRECORDED, MetricResult
from harness.analyse.verdict import Verdict
from harness.publish.terminal import render_text_table
from harness.publish.verdicts import markdown, render_verdicts

RESULTS = [
    MetricResult("new-case", "tpot_s", Verdict("no_baseline", reason=UNRECORDED)),
    MetricResult("new-case", "e2e_s", Verdict("no_baseline", reason=UNRECORDED)),
    MetricResult("changed-case", "tpot_s", Verdict("no_baseline", reason="case definition changed since the baseline")),
    MetricResult("old-case", "tpot_s", Verdict("regressed", 1.0, 1.5, 0.5, 1e-4, 0.1, 12, 12)),
]


def test_cases_never_recorded_are_counted_not_listed():
    """Metrics of cases never recorded are counted, not listed, while a changed definition and a regression
    still get their rows."""
    text = render_text_table(render_verdicts(RESULTS, "t"), width=200)
    assert "3 no_baseline" in text and "1 regressed" in text
    assert "new-case" not in text and "2 metric(s) of cases with no baseline yet are not listed" in text
    assert "changed-case" in text and "old-case" in text  # a changed definition still says why


def test_markdown_collapses_them_too():
    """The markdown report counts never-recorded cases instead of listing them, and lists the rest."""
    text = markdown(RESULTS, "t")
    assert "new-case" not in text and "2 metric(s) of cases with no baseline yet" in text
    assert "| changed-case |" in text and "**regressed**" in text


def test_a_first_run_prints_counts_without_an_empty_table():
    """A run whose cases were all never recorded prints the counts and no empty table."""
    text = render_text_table(render_verdicts(RESULTS[:2], "t"), width=200)
    assert text.splitlines()[0] == "t: 2 no_baseline" and "┏" not in text


def test_long_ids_fold_on_every_row_leaving_the_note_readable():
    """A long case id folds on every row, naming the case on each row's first line and leaving the reason
    whole, and markdown keeps whole ids."""
    case = "seamless-ss-tiny-b1-lognormal-p64-g16-beam4-fp32-sdpa+static+inplace-reorder+compile"
    note = "spread 27.3% of the median"
    results = [
        MetricResult(case, "tpot_s", Verdict("noisy", 1.0, 1.1, 0.1, 0.1, 0.4, 12, 12, reason=note)),
        MetricResult(case, "e2e_s", Verdict("noisy", 1.0, 1.1, 0.1, 0.1, 0.4, 12, 12, reason=note)),
    ]
    text = render_text_table(render_verdicts(results, "t"), width=160)
    assert text.count(note) == 2  # whole, on one line, in both rows
    # Each row's first line names its case and verdict, so a grep for the metric finds the case.
    assert [line for line in text.splitlines() if "seamless-ss-tiny" in line and "noisy" in line and "_s " in line][1]
    assert f"| {case} |" in markdown(results, "t")  # Markdown keeps whole ids on every row
