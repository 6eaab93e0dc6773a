"""The run report's tables as HTML (harness/publish/html_parts.py): a table per family with the
columns the terminal's table fills (harness/publish/terminal.py), each case's lever evidence or
why it failed, where the time goes, the lever ladder, and the verdicts."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from functools import partial

from harness.analyse.gate import MetricResult
from harness.analyse.ladder import LadderSummary
from harness.publish.html_parts import Cell, Column, note_html, table_html
from harness.publish.ladder import OFF_CHAIN, interval_text
from harness.publish.profile_table import in_pipeline_order
from harness.publish.row import Row
from harness.publish.terminal import evidence_summary, kept_columns, metric_cells
from harness.publish.units import EMPTY, MS_PER_S, fmt
from harness.publish.verdicts import COLUMNS, cells, listed, summary_line, unjudged_lines, unrecorded_line

# The number each numeric column of a family's table sorts by (the Row field its text shows).
SORT_FIELDS = {
    "TTFT p50 ms": "ttft_p50_s", "TPOT p50 ms": "tpot_p50_s", "TPOT p90 ms": "tpot_p90_s", "fwd p50 ms": "forward_p50_s",
    "accept (mean len)": "acceptance_rate", "out tok/s": "tokens_per_s", "e2e p50 ms": "e2e_p50_s",
    "peak MiB": "peak_mem_bytes", "speed-up e2e": "speedup",
}
STATUS_CSS = {"ok": "good", "contended": "warn"}  # any other status is a failure: "bad"
MATCH = {True: Cell("yes", css="good"), False: Cell("NO", css="bad"), None: Cell(EMPTY)}


def status_css(status: str) -> str:
    return STATUS_CSS.get(status, "bad")


def by_family(table_rows: Sequence[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in table_rows:
        groups.setdefault(row.family, []).append(row)
    return groups


def family_cell(header: str, text: str, row: Row, family: str) -> Cell:
    """The terminal's text of one cell, its colour markup replaced by a class."""
    if header == "case":
        case = row.case_id.removeprefix(f"{family}-")
        return Cell(case if row.status == "ok" else f"{case} ({row.status})", css="" if row.status == "ok" else status_css(row.status))
    if header == "match":
        return MATCH[row.outputs_match]
    field = SORT_FIELDS.get(header)
    return Cell(text, getattr(row, field) if field else None)


def family_tables(table_rows: Sequence[Row]) -> str:
    """One sortable table per family (ids without the family, which the caption names)."""
    out = []
    for family, group in by_family(table_rows).items():
        columns, grid = kept_columns(group, partial(metric_cells, prefix=f"{family}-"))
        rows = [[family_cell(header, text, row, family) for (header, _), text in zip(columns, texts, strict=True)]
                for row, texts in zip(group, grid, strict=True)]
        heads = [Column(header, header in SORT_FIELDS) for header, _ in columns]
        out.append(table_html(f"family-{family}", f"{family}: {len(group)} case(s)", heads, rows))
    return "\n".join(out) or note_html("no case was recorded")


def evidence_table(records: Sequence[Mapping], table_rows: Sequence[Row]) -> str:
    """Each case's status, what each lever left behind, and the case's message (why it failed)."""
    lossy = any(row.agreement != EMPTY for row in table_rows)
    heads = [Column("case"), Column("status"), *([Column("agreement")] if lossy else []), Column("evidence"),
             Column("message")]
    rows = []
    for record, row in zip(records, table_rows, strict=True):
        status = Cell(row.status, css=status_css(row.status))
        agreement = [Cell(row.agreement)] if lossy else []
        evidence = evidence_summary(record.get("evidence") or {}) or EMPTY
        rows.append([Cell(row.case_id), status, *agreement, Cell(evidence), Cell(str(record.get("message") or ""))])
    return table_html("evidence", "lever evidence per case (or why it failed)", heads, rows)


def profile_table(table_rows: Sequence[Row]) -> str:
    """A line per profiled phase (or stage) of each case, in the order an iteration runs them (the
    results file sorts its keys): its top categories, idle and SoL share."""
    rows = [
        [Cell(row.case_id), Cell(phase), Cell(row.top[phase] or EMPTY),
         Cell(fmt(row.idle_frac.get(phase), 100, 0, "%"), row.idle_frac.get(phase)),
         Cell(fmt(row.sol_frac.get(phase), 100, 1, "%"), row.sol_frac.get(phase))]
        for row in table_rows for phase in in_pipeline_order(row.top)
    ]
    if not rows:
        return note_html("no case has a profiled iteration recorded (quick checks, or runners that record none)")
    heads = [Column("case"), Column("phase"), Column("top categories"), Column("idle", True), Column("SoL", True)]
    return table_html("profile", "where the time goes (profiled iteration; shares of each phase's wall time)", heads, rows)


LADDER_COLUMNS = [Column("workload"), Column("step"), Column("e2e p50 ms", True), Column("TPOT p50 ms", True),
                  Column("step speed-up"), Column("over baseline")]


def ladder_rows(summary: LadderSummary) -> list[list[Cell]]:
    """The terminal ladder table's rows (harness/publish/ladder.py: render_ladders), in its order."""
    rows = []
    for item in summary.ladders:
        for index, step in enumerate(item.steps):
            label = step.stack if not step.added else f"+{step.added}  ({step.stack})"
            workload = item.workload_id + (" (stacks measured one after another)" if item.mode == "sequential" else "")
            rows.append([Cell(workload if index == 0 else ""), Cell(label),
                         Cell(fmt(step.e2e_p50_s, MS_PER_S, 2), step.e2e_p50_s),
                         Cell(fmt(step.tpot_p50_s, MS_PER_S, 3), step.tpot_p50_s),
                         Cell(interval_text(step.step)), Cell(interval_text(step.cumulative))])
        rows += [[Cell(""), Cell(f"{stack}: left out", css="warn"), Cell(""), Cell(""), Cell(why), Cell("")]
                 for stack, why in item.left_out if why != OFF_CHAIN]
    rows += [[Cell(workload), Cell("no ladder", css="warn"), Cell(""), Cell(""), Cell(why), Cell("")]
             for workload, why in summary.missing]
    rows += [[Cell(f"{family}: combined (geomean of its workloads)"), Cell(""), Cell(""), Cell(""), Cell(""),
              Cell(interval_text(interval))] for family, interval in summary.per_family.items()]
    if summary.overall is not None:
        rows.append([Cell(f"all families: geometric mean ({len(summary.per_family)})"), Cell(""), Cell(""), Cell(""),
                     Cell(""), Cell(interval_text(summary.overall))])
    return rows


def ladder_table(summary: LadderSummary, caption: str) -> str:
    """In step order, not sortable: the order is the ladder."""
    return table_html("ladder-table", caption, LADDER_COLUMNS, ladder_rows(summary), sortable=False)


# The number each numeric column of the verdicts sorts by.
VERDICT_SORT = {"baseline": "baseline_median", "current": "current_median", "change": "change_frac", "p": "p_value",
                "MDE": "mde_frac"}
VERDICT_CSS = {"regressed": "bad", "error": "bad", "improved": "good", "unchanged": ""}  # the unjudged: "warn"


def verdict_row(result: MetricResult) -> list[Cell]:
    texts = dict(zip(COLUMNS, cells(result), strict=True))
    return [Cell(texts[column], getattr(result.verdict, VERDICT_SORT[column]) if column in VERDICT_SORT else None,
                 VERDICT_CSS.get(result.verdict.status, "warn") if column == "verdict" else "")
            for column in COLUMNS]


def verdicts_html(results: list[MetricResult], allowed: tuple[str, ...]) -> str:
    """The summary line, the "not judged" lines, and a sortable row per listed metric."""
    rows, unrecorded = listed(results)
    parts = [f"<p><strong>{html.escape(summary_line(results))}</strong></p>"]
    parts += [note_html(line) for line in (unrecorded_line(unrecorded), *unjudged_lines(results, allowed)) if line]
    if rows:
        heads = [Column(column, column in VERDICT_SORT) for column in COLUMNS]
        parts.append(table_html("verdicts-table", "verdicts per case and metric", heads, [verdict_row(r) for r in rows]))
    return "\n".join(parts)
