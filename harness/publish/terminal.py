"""End-of-run tables: pure functions from case records to rows, then to rich Tables.

One metrics table per family and one of the levers' evidence; the where-the-time-goes table of
profiled cases is harness/publish/profile_table.py.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping

from rich.console import Console, JustifyMethod, RenderableType
from rich.table import Table

from harness.analyse.intervals import paired_speedup_interval
from harness.analyse.ladder import round_pairs
from harness.analyse.stats import median, reported_quantile, speedup
from harness.errors import HarnessError
from harness.families import FAMILIES
from harness.levers import LEVERS
from harness.publish.profile_table import render_profile, top_categories
from harness.publish.row import Row
from harness.publish.units import BYTES_PER_MIB, EMPTY, MS_PER_S, fmt


def agreement_text(record: Mapping) -> str:
    """'top5 1.000>=0.95 top1 0.94': the gated metric against its minimum, then top-1 agreement."""
    tolerance, found = record.get("tolerance") or {}, record.get("agreement") or {}
    if not tolerance or tolerance["metric"] not in found:
        return EMPTY
    metric = tolerance["metric"]
    verdict = ">=" if found[metric] >= tolerance["minimum"] else "<"
    text = f"{metric.removesuffix('_agreement')} {found[metric]:.3f}{verdict}{tolerance['minimum']}"
    top1 = found.get("top1_agreement")
    return text if top1 is None or metric == "top1_agreement" else f"{text} top1 {top1:.2f}"


def output_tokens_per_s(record: Mapping) -> float | None:
    """Median over iterations of generated tokens (whole batch) per second of e2e time."""
    rates = [record["batch_size"] * n / s for n, s in zip(record["gen_lens"], record["e2e_s"], strict=False) if s > 0]
    return median(rates) if rates else None


def baseline_stack(family: str) -> str:
    spec = FAMILIES.get(family)
    return "+".join(spec.baseline) if spec else "eager"


def evidence_summary(evidence: Mapping) -> str:
    """One short phrase per lever, each in the lever's own words (Lever.brief)."""
    parts = []
    for lever, found in evidence.items():
        try:
            text = LEVERS.get(lever).brief(found)
        except (HarnessError, KeyError):  # a record from a harness with other levers
            text = " ".join(f"{key}={value}" for key, value in found.items())
        parts.append(f"{lever}: {text}")
    return "; ".join(parts)


def _median_or_none(samples) -> float | None:
    return median(samples) if samples else None


def stage_medians(record: Mapping) -> tuple[tuple[str, float], ...]:
    return tuple((stage, median(samples)) for stage, samples in record.get("stages_s", {}).items() if samples)


def stage_shares(stages: tuple[tuple[str, float], ...]) -> dict[str, float]:
    """Each stage's share of the stages' total (medians), e.g. the text decoder's share of ss time."""
    total = sum(seconds for _, seconds in stages)
    return {stage: seconds / total for stage, seconds in stages} if total > 0 else {}


def _stages_text(stages: tuple[tuple[str, float], ...]) -> str:
    shares = stage_shares(stages)
    return "\n".join(
        f"{stage.removesuffix('_s')} {seconds * MS_PER_S:.2f} ({100 * shares.get(stage, 0):.0f}%)"
        for stage, seconds in stages
    ) or EMPTY


def _speedup(baseline: Mapping | None, record: Mapping) -> float | None:
    """Over the workload's baseline stack: from per-round paired ratios where both ran in the same
    rounds (harness.analyse.ladder.round_pairs), else median over median; None for a contended
    case (never a finding)."""
    if baseline is None or record["status"] != "ok":
        return None
    paired = round_pairs(baseline, record)
    return paired_speedup_interval(*paired).estimate if paired else speedup(baseline["e2e_s"], record["e2e_s"])


def rows(records: Iterable[Mapping]) -> list[Row]:
    records = list(records)
    baselines = {
        r["workload_id"]: r
        for r in records
        if r["stack"] == baseline_stack(r["family"]) and r["status"] == "ok" and r["e2e_s"]
    }
    table = []
    for r in records:
        measured = bool(r["e2e_s"])
        table.append(
            Row(
                case_id=r["id"],
                status=r["status"],
                ttft_p50_s=_median_or_none(r["ttft_s"]),
                tpot_p50_s=_median_or_none(r["tpot_s"]),
                tpot_p90_s=reported_quantile(r["tpot_s"], 0.9) if r["tpot_s"] else None,
                tokens_per_s=output_tokens_per_s(r) if measured else None,
                peak_mem_bytes=r["peak_mem_bytes"],
                speedup=_speedup(baselines.get(r["workload_id"]), r) if measured else None,
                outputs_match=r["outputs_match"],
                evidence=r["message"] if r["status"] == "contended" else evidence_summary(r["evidence"]) or r["message"],
                e2e_p50_s=_median_or_none(r["e2e_s"]),
                stages_p50_s=stage_medians(r),
                top={phase: top_categories(r, phase) for phase in r.get("breakdown", {})},
                idle_frac=r.get("idle_frac", {}),
                sol_frac=r.get("sol_frac", {}),
                ops_per_token=r.get("ops_per_token"),
                ops_unit=r.get("ops_unit", ""),
                agreement=agreement_text(r),
                forward_p50_s=_median_or_none(r.get("time_per_forward_s", [])),
                acceptance_rate=r.get("acceptance_rate"),
                mean_accepted_len=r.get("mean_accepted_len"),
                family=r["family"],
            )
        )
    return table


# Columns that may be left out when no row has a value (a recommender-only run has no TTFT);
# e2e is shown only for rows without TTFT/TPOT (decoder rows are told by those, and the table
# must stay readable at 160 columns).
OPTIONAL_COLUMNS = frozenset({"TTFT p50 ms", "TPOT p50 ms", "TPOT p90 ms", "stages p50 ms", "e2e p50 ms", "agreement"})
# Shown only when a row speculated (elsewhere the forward time is the TPOT again).
SPECULATION_COLUMNS = frozenset({"fwd p50 ms", "accept (mean len)"})


def _accept_text(row: Row) -> str:
    if row.acceptance_rate is None:
        return EMPTY
    return f"{100 * row.acceptance_rate:.0f}% ({row.mean_accepted_len:.2f})"


def _column_used(header: str, rows_: list[Row], texts: list[str]) -> bool:
    if header in SPECULATION_COLUMNS:
        return any(row.acceptance_rate is not None for row in rows_)
    if header == "e2e p50 ms":
        return any(row.ttft_p50_s is None and row.e2e_p50_s is not None for row in rows_)
    return header not in OPTIONAL_COLUMNS or any(text != EMPTY for text in texts)


def _case_text(row: Row, prefix: str = "") -> str:
    case = row.case_id.removeprefix(prefix)
    color = "yellow" if row.status == "contended" else "red"  # the machine's doing, not the code's
    return case if row.status == "ok" else f"{case} [{color}]({row.status})[/]"


def metric_cells(row: Row, prefix: str = "") -> list[tuple[str, str, str]]:
    """(header, justify, text) of the metrics table for one row, in column order."""
    match = {True: "[green]yes[/]", False: "[red]NO[/]", None: EMPTY}[row.outputs_match]
    return [
        ("case", "left", _case_text(row, prefix)),
        ("TTFT p50 ms", "right", fmt(row.ttft_p50_s, MS_PER_S)),
        ("TPOT p50 ms", "right", fmt(row.tpot_p50_s, MS_PER_S, 3)),
        ("TPOT p90 ms", "right", fmt(row.tpot_p90_s, MS_PER_S, 3)),
        ("fwd p50 ms", "right", fmt(row.forward_p50_s, MS_PER_S, 3)),
        ("accept (mean len)", "right", _accept_text(row)),
        ("out tok/s", "right", fmt(row.tokens_per_s, digits=1)),
        ("e2e p50 ms", "right", fmt(row.e2e_p50_s, MS_PER_S)),
        ("stages p50 ms", "left", _stages_text(row.stages_p50_s)),
        ("peak MiB", "right", fmt(row.peak_mem_bytes, 1 / BYTES_PER_MIB, 1)),
        ("speed-up e2e", "right", fmt(row.speedup, suffix="x")),
        ("match", "center", match),
    ]


def evidence_cells(row: Row) -> list[tuple[str, str, str]]:
    return [
        ("case", "left", _case_text(row)),
        ("agreement", "left", row.agreement),  # lossy stacks only: the gated figure vs its minimum
        ("evidence", "left", row.evidence),
    ]


# Columns folded into unreadable slivers when long case ids take the width (SeamlessM4T's stages).
MIN_WIDTHS = {"stages p50 ms": 30}


def kept_columns(table_rows: list[Row], cells_of) -> tuple[list[tuple[str, JustifyMethod]], list[list[str]]]:
    """(header, justify) of the columns some row fills (OPTIONAL_COLUMNS), and each row's texts
    in them: the terminal's tables and the HTML report's (harness/publish/run_report.py) alike."""
    grid = [cells_of(row) for row in table_rows]
    columns = cells_of(Row("", "ok", None, None, None, None, None, None, None, ""))
    keep = [
        index for index, (header, _, _) in enumerate(columns)
        if _column_used(header, table_rows, [cells[index][2] for cells in grid])
    ]
    return [columns[index][:2] for index in keep], [[cells[index][2] for index in keep] for cells in grid]


def _table(table_rows: list[Row], title: str, cells_of) -> Table:
    """Only the columns some row fills; the case column never wraps."""
    table = Table(title=title, show_lines=False)
    columns, grid = kept_columns(table_rows, cells_of)
    for header, justify in columns:
        table.add_column(
            header, justify=justify, overflow="fold", no_wrap=header == "case", min_width=MIN_WIDTHS.get(header)
        )
    for texts in grid:
        table.add_row(*texts)
    return table


def _by_family(table_rows: list[Row]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in table_rows:
        groups.setdefault(row.family, []).append(row)
    return groups


def render_tables(table_rows: list[Row], title: str = "harness results") -> list[Table]:
    """One metrics table per family (its own columns; ids without the family, which the title
    names), then one table of what each lever left as evidence. A single table of every
    column and 85-character SeamlessM4T ids folded the numbers into 3-character slivers."""
    tables = [
        _table(group, f"{title}: {family}", lambda row, prefix=f"{family}-": metric_cells(row, prefix))
        for family, group in _by_family(table_rows).items()
    ]
    tables.append(_table(table_rows, f"{title}: lever evidence (or why a case failed)", evidence_cells))
    return tables


def render_text(table_rows: list[Row], width: int = 160, color: bool = False, title: str = "harness results") -> str:
    """The results table, then (when any case was profiled) the where-the-time-goes table."""
    tables: list[RenderableType] = list(render_tables(table_rows, title))
    profile = render_profile(table_rows)
    if profile is not None:
        tables.append(profile)
    return render_text_table(*tables, width=width, color=color)


def render_text_table(*tables: RenderableType, width: int = 160, color: bool = False) -> str:
    console = Console(width=width, force_terminal=color, record=True, file=io.StringIO())
    for table in tables:
        console.print(table)
    return console.export_text(styles=color)
