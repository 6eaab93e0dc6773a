"""The ladder as a rich table and as a chart (PNG and SVG), from harness.analyse.ladder's pure results."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import JustifyMethod
from rich.table import Table

from harness.analyse.ladder import CONFIDENCE, AcrossRuns, Interval, Ladder, LadderSummary, Step
from harness.publish.figures import pyplot, save_figure
from harness.publish.units import EMPTY, MS_PER_S, fmt


def interval_text(interval: Interval | None) -> str:
    if interval is None:
        return EMPTY
    if not interval.bounded:
        return f"{interval.estimate:.2f}x [too few samples]"
    return f"{interval.estimate:.2f}x [{interval.low:.2f}, {interval.high:.2f}]"


# Left-out stacks shown under their workload: those the machine or a fault kept out (a stack
# merely off the longest chain is not news).
OFF_CHAIN = "not on the longest cumulative chain"


def render_ladders(found: Sequence[Ladder], per_family: Mapping[str, Interval], overall: Interval | None,
                   missing: Sequence[tuple[str, str]] = ()) -> Table:
    level = f"{100 * CONFIDENCE:.0f}% CI"
    table = Table(title=f"lever ladder: e2e speed-up per step and over the baseline (Hodges-Lehmann, {level})")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("workload", "left"), ("step", "left"), ("e2e p50 ms", "right"), ("TPOT p50 ms", "right"),
        ("step speed-up", "right"), ("over baseline", "right"),
    )
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=header == "workload")
    for item in found:
        for index, step in enumerate(item.steps):
            label = step.stack if not step.added else f"+{step.added}  ({step.stack})"
            workload = item.workload_id + (" (stacks measured one after another)" if item.mode == "sequential" else "")
            table.add_row(workload if index == 0 else "", label, fmt(step.e2e_p50_s, MS_PER_S, 2),
                          fmt(step.tpot_p50_s, MS_PER_S, 3), interval_text(step.step), interval_text(step.cumulative))
        for stack, why in item.left_out:
            if why != OFF_CHAIN:
                table.add_row("", f"{stack}: left out", "", "", why, "")
        table.add_section()
    for workload, why in missing:
        table.add_row(workload, "no ladder", "", "", why, "")
    if missing:
        table.add_section()
    for family, interval in per_family.items():
        table.add_row(f"{family}: combined (geomean of its workloads)", "", "", "", "", interval_text(interval))
    if overall is not None:
        table.add_row(f"all families: geometric mean ({len(per_family)})", "", "", "", "", interval_text(overall))
    return table


def render_across_runs(names: Sequence[str], found: AcrossRuns) -> Table:
    """Each run's combined speed-up per family, and the interval the runs give together."""
    level = f"{100 * CONFIDENCE:.0f}% CI"
    table = Table(title=f"lever ladder across {len(names)} runs: combined speed-up (geomean of runs, t interval on logs, {level})")
    table.add_column("family", no_wrap=True)
    for name in names:
        table.add_column(name, justify="right", overflow="fold")
    table.add_column("across runs", justify="right", no_wrap=True)
    for family, values in found.per_run.items():
        table.add_row(family, *(f"{value:.2f}x" for value in values), interval_text(found.interval[family]))
    return table


def _errors(intervals: Sequence[Interval | None]) -> tuple[list[float], list[float]]:
    """matplotlib's asymmetric error bars; 0 where an interval has no bounds."""
    below = [i.estimate - i.low if i is not None and i.low is not None else 0.0 for i in intervals]
    above = [i.high - i.estimate if i is not None and i.high is not None else 0.0 for i in intervals]
    return below, above


def over_baseline(step: Step) -> Interval:
    """A step's cumulative speed-up (every step after the baseline has one)."""
    assert step.cumulative is not None, f"step {step.stack} has no speed-up over the baseline"
    return step.cumulative


def _bars(axes, labels: list[str], intervals: list[Interval], title: str, color: str) -> None:
    values = [i.estimate for i in intervals]
    axes.bar(range(len(values)), values, color=color, yerr=_errors(intervals), capsize=3, width=0.6)
    axes.axhline(1.0, color="#555555", linewidth=0.8, linestyle="--")
    for x, value in enumerate(values):
        axes.text(x + 0.06, value, f"{value:.2f}x", ha="left", va="bottom", fontsize=7)  # beside the error bar
    axes.set_xticks(range(len(values)), labels, rotation=30, ha="right", fontsize=7)
    axes.set_title(title, fontsize=8)
    axes.set_ylabel("speed-up over baseline", fontsize=7)


def render_chart(found: Sequence[Ladder], per_family: Mapping[str, Interval], overall: Interval | None,
                 stem: Path) -> list[Path]:
    """The ladder chart (ladder_figure) as PNG and SVG files at `stem`."""
    return save_figure(ladder_figure(found, per_family, overall), stem)


def ladder_figure(found: Sequence[Ladder], per_family: Mapping[str, Interval], overall: Interval | None):
    """One panel per ladder (cumulative speed-up at each step, CI as error bars), and a last
    panel with each family's combined speed-up and the geometric mean across families."""
    panels = len(found) + 1
    columns = min(3, panels)
    rows = math.ceil(panels / columns)
    figure, grid = pyplot().subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    cells = [axes for row in grid for axes in row]
    for axes, item in zip(cells, found, strict=False):  # the grid may have more cells than items
        labels = [item.steps[0].stack] + [f"+{step.added}" for step in item.steps[1:]]
        intervals = [Interval(1.0, 1.0, 1.0)] + [over_baseline(step) for step in item.steps[1:]]
        _bars(axes, labels, intervals, item.workload_id, "#1f77b4")
    summary = dict(per_family)
    if overall is not None:
        summary["geomean"] = overall
    _bars(cells[len(found)], list(summary), list(summary.values()), "combined speed-up per family", "#2ca02c")
    for axes in cells[panels:]:
        axes.set_visible(False)
    figure.suptitle(f"lever ladder (e2e, Hodges-Lehmann {100 * CONFIDENCE:.0f}% CI)", fontsize=9)
    figure.tight_layout()
    return figure


def chart_stem(results_path: Path) -> Path:
    """The chart's files sit beside the results file they come from."""
    return Path(results_path).with_name(f"{Path(results_path).stem}-ladder")


def write_ladder(summary: LadderSummary, stem: Path) -> tuple[Table, list[Path]] | None:
    """The table and the chart files of a run's ladders; None when no workload had a second step
    and none lost its ladder (a contended or failed baseline: then the table says so, no chart)."""
    if not summary.ladders and not summary.missing:
        return None
    table = render_ladders(summary.ladders, summary.per_family, summary.overall, summary.missing)
    if not summary.ladders:
        return table, []
    return table, render_chart(summary.ladders, summary.per_family, summary.overall, stem)
