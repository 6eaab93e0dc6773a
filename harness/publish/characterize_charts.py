"""The characterization's charts (matplotlib, Agg): the data comes from
harness/publish/characterize.py; each function returns a figure for save_figure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from harness.analyse.stats import median
from harness.publish.charts import draw_stack
from harness.publish.figures import pyplot
from harness.publish.length_data import ecdf

# Why tab10 then tab20: stacks keep one colour in every figure of a page, and ten stacks are
# the most one family's matrix has today; past twenty the colours repeat.
STACK_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
                "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
SEGMENT_COLORS = {"prefill": "#1f77b4", "decode": "#ff7f0e", "outside the stages": "#d9d9d9"}
STAGE_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#d62728", "#7f7f7f")  # not prefill's or decode's


def palette(names: Sequence[str]) -> dict[str, str]:
    return {name: STACK_COLORS[index % len(STACK_COLORS)] for index, name in enumerate(dict.fromkeys(names))}


LEGEND_IN = 1.7  # inches kept right of the panels for a figure's legend


def layout_with_legend(figure, axes_list) -> None:
    """Lay the panels out leaving LEGEND_IN inches on the right, and put one legend there with
    each label once (a legend outside the canvas would be cut off in the saved file)."""
    unique: dict = {}
    for axes in axes_list:
        handles, labels = axes.get_legend_handles_labels()
        unique.update(zip(labels, handles, strict=True))
    right = 1.0 - LEGEND_IN / figure.get_figwidth()
    figure.tight_layout(rect=(0.0, 0.0, right, 1.0))
    figure.legend(unique.values(), unique.keys(), fontsize=7, loc="center left", bbox_to_anchor=(right, 0.5))


SIDE_BY_SIDE_BARS = 16  # up to this many bars in all, the phases' panels sit in one row


def breakdown_figure(title: str, data: Mapping[str, Sequence[tuple[str, Mapping[str, float]]]]):
    """A panel per phase, a stacked bar per case: category shares of the phase's wall time. Few
    bars: the panels side by side; a whole matrix: one panel per row, or the figure grows too wide."""
    widest = max(len(cases) for cases in data.values())
    side_by_side = widest * len(data) <= SIDE_BY_SIDE_BARS
    panel_in = max(3.6, (0.8 if side_by_side else 0.45) * widest + 1.2)
    shape = (1, len(data)) if side_by_side else (len(data), 1)
    size = (panel_in * len(data) + LEGEND_IN, 5.2) if side_by_side else (panel_in + LEGEND_IN, 4.6 * len(data))
    figure, grid = pyplot().subplots(*shape, figsize=size, squeeze=False)
    panels = [axes for row in grid for axes in row]
    for axes, (phase, cases) in zip(panels, data.items(), strict=True):
        for x, (_, shares) in enumerate(cases):
            draw_stack(axes, x, shares, width=0.7, named=False)
        axes.set_xticks(range(len(cases)), [case for case, _ in cases], rotation=30, ha="right", fontsize=6)
        axes.set_title(phase, fontsize=9)
        axes.set_ylim(0, 102)
        axes.set_ylabel("share of the phase's profiled wall time (%)", fontsize=7)
    figure.suptitle(f"{title}: operator categories per phase (idle hatched)", fontsize=9)
    layout_with_legend(figure, panels)
    return figure


def idle_figure(per_family: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]]):
    """A panel per family: per phase, a bar per stack at the median idle share of its workloads."""
    figure, grid = pyplot().subplots(1, len(per_family), figsize=(5.2 * len(per_family), 3.8), squeeze=False)
    panels = list(grid[0])
    for axes, (family, phases) in zip(panels, per_family.items(), strict=True):
        stacks = palette([stack for found in phases.values() for stack in found])
        width = 0.8 / len(stacks)
        for x, found in enumerate(phases.values()):
            for index, stack in enumerate(stacks):
                if stack not in found:
                    continue
                left = x - 0.4 + width * (index + 0.5)
                value = 100 * median(found[stack])
                axes.bar(left, value, width=width * 0.9, color=stacks[stack], label=stack if x == 0 else None)
                axes.text(left, value, f"{value:.0f}", ha="center", va="bottom", fontsize=6)
        axes.set_xticks(range(len(phases)), list(phases), fontsize=8)
        axes.set_ylim(0, 105)
        axes.set_ylabel("device idle, % of the phase's wall time", fontsize=8)
        axes.set_title(family, fontsize=9)
        axes.legend(fontsize=6, loc="upper left", ncols=2)
    figure.suptitle("idle share per phase, by stack (median over workloads)", fontsize=9)
    figure.tight_layout()
    return figure


def split_figure(per_family: Mapping[str, Sequence[tuple[str, Mapping[str, float]]]]):
    """A panel per family, a horizontal bar per case split by share of its median e2e time."""
    heights = [max(1.6, 0.32 * len(cases) + 0.9) for cases in per_family.values()]
    figure, grid = pyplot().subplots(len(per_family), 1, figsize=(8.6 + LEGEND_IN, sum(heights) + 0.4), squeeze=False,
                                     height_ratios=heights)
    panels = [row[0] for row in grid]
    names = [name for cases in per_family.values() for _, shares in cases for name in shares]
    stages = [name for name in dict.fromkeys(names) if name not in SEGMENT_COLORS]
    colors = {**dict(zip(stages, STAGE_COLORS * (1 + len(stages) // len(STAGE_COLORS)), strict=False)), **SEGMENT_COLORS}
    for axes, (family, cases) in zip(panels, per_family.items(), strict=True):
        for y, (_, shares) in enumerate(cases):
            left = 0.0
            for name, share in shares.items():
                axes.barh(y, 100 * share, left=100 * left, color=colors[name], height=0.7, label=name)
                if share >= 0.025:  # about 20 px at this width: room for "3%" in a small font
                    axes.text(100 * (left + share / 2), y, f"{100 * share:.0f}%", ha="center", va="center",
                              fontsize=6 if share >= 0.05 else 5)
                left += share
        axes.set_yticks(range(len(cases)), [case for case, _ in cases], fontsize=6)
        axes.invert_yaxis()
        axes.set_xlim(0, 100)
        axes.set_title(family, fontsize=9, loc="left")
    panels[-1].set_xlabel("share of the median end-to-end time (%)", fontsize=8)
    figure.suptitle("prefill against decode (or the family's stages), share of e2e", fontsize=9)
    layout_with_legend(figure, panels)
    return figure


LOG_SPREAD = 10.0  # a slowest token this many times the fastest: a log axis, else the bulk is one line


def tpot_figure(family: str, per_workload: Mapping[str, Mapping[str, Sequence[float]]]):
    """A panel per workload, a CDF line per stack of its per-token decode latency."""
    columns = min(3, len(per_workload))
    rows = math.ceil(len(per_workload) / columns)
    figure, grid = pyplot().subplots(rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False)
    cells = [axes for row in grid for axes in row]
    stacks = palette([stack for found in per_workload.values() for stack in found])
    for axes, (workload, found) in zip(cells, per_workload.items(), strict=False):
        for stack, samples in found.items():
            xs, ys = ecdf([1e3 * value for value in samples])
            axes.step(xs, ys, where="post", color=stacks[stack], linewidth=1.2,
                      label=f"{stack} (p50 {1e3 * median(samples):.2f} ms, n={len(samples)})")
        values = [v for samples in found.values() for v in samples]
        logarithmic = max(values) > LOG_SPREAD * min(values)
        if logarithmic:
            axes.set_xscale("log")
        axes.set_xlabel("time per output token (ms" + (", log scale)" if logarithmic else ")"), fontsize=8)
        axes.set_ylabel("share of tokens at or below", fontsize=8)
        axes.set_ylim(0, 1.02)
        axes.set_title(workload.removeprefix(f"{family}-"), fontsize=8)
        axes.legend(fontsize=6, loc="best")
        axes.grid(alpha=0.3, which="both")
    for axes in cells[len(per_workload):]:
        axes.set_visible(False)
    figure.suptitle(f"{family}: TPOT distribution per workload, one line per stack", fontsize=9)
    figure.tight_layout()
    return figure

