"""Rendering verdicts: a rich table for the terminal and Markdown for CI job summaries."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from harness.analyse.gate import UNRECORDED, MetricResult, gate_status
from harness.analyse.verdict import UNJUDGED, VERDICTS
from harness.errors import EXIT_REGRESSION, EXIT_UNJUDGED
from harness.publish.console import markdown_table
from harness.publish.units import EMPTY

SEVERITY = {
    status: rank
    for rank, status in enumerate(
        ("regressed", "error", "missing", "contended", "env_mismatch", "noisy", "no_baseline", "improved", "unchanged"))
}
STYLE = {"regressed": "bold red", "error": "red", "missing": "yellow", "contended": "yellow", "env_mismatch": "yellow",
         "noisy": "yellow", "improved": "green"}
ALLOW_FLAG = "--allow-unjudged"
WHY_UNJUDGED = {  # one phrase per kind, for the "not judged" section (each row's note has the details)
    "no_baseline": "no baseline to compare with, or the case's definition changed since it",
    "missing": "in the baseline, not in this run",
    "noisy": "too few samples or too much spread to vouch for unchanged",
    "contended": "the machine stayed busy through the case's rounds",
    "env_mismatch": "baseline recorded in another environment (--allow-env-diff FIELDS judges them anyway)",
}
LISTED_IDS = 6  # case ids named per kind; the rest are counted
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


def _named(case_ids: list[str]) -> str:
    more = len(case_ids) - LISTED_IDS
    return ", ".join(case_ids[:LISTED_IDS]) + (f" and {more} more" if more > 0 else "")


def unjudged_lines(results: list[MetricResult], allowed: tuple[str, ...] = ()) -> list[str]:
    """The "not judged" section: how many cases, the exit status it gives, and per kind why, which
    cases (cases never recorded only counted) and the allowance that would accept them."""
    by_kind: dict[str, dict[str, bool]] = {}  # kind -> case id -> never recorded
    for result in ordered(results):
        if result.verdict.status in UNJUDGED:
            by_kind.setdefault(result.verdict.status, {})[result.case_id] = result.verdict.reason == UNRECORDED
    if not by_kind:
        return []
    failing = [kind for kind in UNJUDGED if kind in by_kind and kind not in allowed]
    status = gate_status(results, allowed)
    total = len({case_id for cases in by_kind.values() for case_id in cases})
    if not failing:
        outcome = f"all accepted by {ALLOW_FLAG} {','.join(kind for kind in UNJUDGED if kind in by_kind)}, no exit {EXIT_UNJUDGED}"
    else:
        exit_text = f"exit {EXIT_REGRESSION} (the regression comes first)" if status == EXIT_REGRESSION else f"exit {EXIT_UNJUDGED}"
        outcome = f"{exit_text}; {ALLOW_FLAG} {','.join(failing)} would accept them"
    lines = [f"not judged: {total} case(s): {outcome}"]
    for kind in UNJUDGED:
        cases = by_kind.get(kind, {})
        if not cases:
            continue
        state = "accepted" if kind in allowed else f"accept with {ALLOW_FLAG} {kind}"
        named = [case_id for case_id, unrecorded in cases.items() if not unrecorded]
        never = len(cases) - len(named)
        parts = ([f"{never} never recorded"] if never else []) + ([_named(named)] if named else [])
        lines.append(f"{kind}: {len(cases)} case(s), {WHY_UNJUDGED[kind]} ({state}): {'; '.join(parts)}")
    return lines


def render_verdicts(results: list[MetricResult], title: str, allowed: tuple[str, ...] = ()) -> RenderableType:
    rows, unrecorded = listed(results)
    section = "".join(f"{line}\n" for line in unjudged_lines(results, allowed))
    if not rows:  # nothing to show row by row: no empty table, just the counts
        return Text(f"{title}: {summary_line(results)}\n{unrecorded_line(unrecorded)}\n{section}")
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
    return Group(table, Text(section)) if section else table


def markdown(results: list[MetricResult], title: str, allowed: tuple[str, ...] = ()) -> str:
    rows, unrecorded = listed(results)
    lines = [f"### {title}", "", f"**{summary_line(results)}**", ""]
    lines += [unrecorded_line(unrecorded), ""] if unrecorded else []
    section = unjudged_lines(results, allowed)
    if section:  # a bold headline and one bullet per kind, above the table
        lines += [f"**{section[0]}**", "", *(f"- {line}" for line in section[1:]), ""]
    table_rows = [cells(result) for result in rows]
    for row, result in zip(table_rows, rows, strict=True):
        if result.verdict.status == "regressed":
            row[2] = f"**{row[2]}**"
    return "\n".join(lines + markdown_table(COLUMNS, table_rows)) + "\n"


def write_step_summary(text: str, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append to $GITHUB_STEP_SUMMARY when GitHub Actions provides it."""
    target = environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as stream:
        stream.write(text + "\n")
    return Path(target)
