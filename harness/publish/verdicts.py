"""Rendering verdicts: a rich table for the terminal and Markdown for CI job summaries."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from rich.table import Table
from rich.text import Text

from harness.analyse.gate import UNRECORDED, MetricResult
from harness.analyse.verdict import VERDICTS
from harness.publish.units import EMPTY

SEVERITY = {
    status: rank
    for rank, status in enumerate(
        ("regressed", "error", "contended", "env_mismatch", "noisy", "no_baseline", "improved", "unchanged"))
}
STYLE = {"regressed": "bold red", "error": "red", "contended": "yellow", "env_mismatch": "yellow", "noisy": "yellow",
         "improved": "green"}
COLUMNS = ("case", "metric", "verdict", "baseline", "current", "change", "p", "MDE", "note")
# In the terminal, ids of up to 85 characters (SeamlessM4T's) fold in the case column instead of
# squeezing the note into a 6-character sliver (Markdown tables wrap by themselves).
TERMINAL_MAX_WIDTHS = {"case": 44}
TERMINAL_MIN_WIDTHS = {"note": 30}


def counts(results: Iterable[MetricResult]) -> dict[str, int]:
    found = Counter(result.verdict.status for result in results)
    return {status: found[status] for status in VERDICTS if found[status]}


def summary_line(results: list[MetricResult]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts(results).items()) or "nothing compared"


def _num(value: float | None, metric: str) -> str:
    if value is None:
        return EMPTY
    if metric.endswith("_bytes"):
        return f"{value / 2**20:.1f} MiB"
    return f"{value * 1e3:.3f} ms" if metric.endswith("_s") else f"{value:.4g}"


def _pct(value: float | None) -> str:
    if value is None:
        return EMPTY
    return "∞" if math.isinf(value) else f"{100 * value:+.1f}%"


def cells(result: MetricResult) -> list[str]:
    v = result.verdict
    return [
        result.case_id,
        result.metric,
        v.status,
        _num(v.baseline_median, result.metric),
        _num(v.current_median, result.metric),
        _pct(v.change_frac),
        EMPTY if v.p_value is None else f"{v.p_value:.2g}",
        EMPTY if v.mde_frac is None else _pct(v.mde_frac).lstrip("+"),
        "; ".join(part for part in (v.reason, result.attribution) if part),
    ]


def ordered(results: Iterable[MetricResult]) -> list[MetricResult]:
    return sorted(results, key=lambda r: (SEVERITY.get(r.verdict.status, 99), r.case_id, r.metric))


def listed(results: Iterable[MetricResult]) -> tuple[list[MetricResult], int]:
    """The rows worth a line each, and how many metrics were left out because no baseline was
    ever recorded for their case (a first run would otherwise print one row per metric)."""
    rows, unrecorded = [], 0
    for result in ordered(results):
        if result.verdict.status == "no_baseline" and result.verdict.reason == UNRECORDED:
            unrecorded += 1
        else:
            rows.append(result)
    return rows, unrecorded


def unrecorded_line(count: int) -> str:
    return f"{count} metric(s) of cases with no baseline yet are not listed (record them with --update-baselines)" if count else ""


def render_verdicts(results: list[MetricResult], title: str) -> Table | Text:
    rows, unrecorded = listed(results)
    if not rows:  # nothing to show row by row: no empty table, just the counts
        return Text(f"{title}: {summary_line(results)}\n{unrecorded_line(unrecorded)}\n")
    table = Table(title=f"{title}: {summary_line(results)}", caption=unrecorded_line(unrecorded) or None)
    for column in COLUMNS:
        table.add_column(column, overflow="fold", max_width=TERMINAL_MAX_WIDTHS.get(column), min_width=TERMINAL_MIN_WIDTHS.get(column))
    for result in rows:
        # Every row carries its case id (folded when long): a CI log grepped for "tpot_s.*regressed"
        # must still name the case.
        row = cells(result)
        style = STYLE.get(result.verdict.status)
        row[2] = f"[{style}]{row[2]}[/]" if style else row[2]
        table.add_row(*row)
    return table


def markdown(results: list[MetricResult], title: str) -> str:
    rows, unrecorded = listed(results)
    lines = [f"### {title}", "", f"**{summary_line(results)}**", ""]
    lines += [unrecorded_line(unrecorded), ""] if unrecorded else []
    lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for result in rows:
        row = [cell.replace("|", "\\|") for cell in cells(result)]
        if result.verdict.status == "regressed":
            row[2] = f"**{row[2]}**"
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def write_step_summary(text: str, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append to $GITHUB_STEP_SUMMARY when GitHub Actions provides it."""
    target = environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as stream:
        stream.write(text + "\n")
    return Path(target)
