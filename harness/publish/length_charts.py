"""The length-distribution charts: each recorded workload's draws beside the distribution it drew
from, and the committed real tables beside the synthetic kinds (data: length_data.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from harness.publish.characterize_charts import palette
from harness.publish.figures import pyplot
from harness.publish.length_data import DEFAULT_UNITS, UNITS, Drawn, RealColumn, ecdf, percentile, source_curve

SYNTHETIC_STYLE = {"lognormal": ("#ff7f0e", "--"), "longtail": ("#2ca02c", ":")}


def _kind_label(drawn: Drawn) -> str:
    kind = drawn.kind or "fixed"
    return f"{kind}: {drawn.workload_id.split('-', 3)[-1]}"


def lengths_figure(family: str, drawn: Sequence[Drawn]):
    """Two panels (input, output): per workload, a CDF of the recorded draws (solid) and of the
    distribution it draws from (dashed: the scaled, capped table, or the synthetic shape)."""
    legend_rows = len(drawn)  # two entries per workload, two columns
    legend_in = 0.2 * legend_rows + 0.25
    figure, grid = pyplot().subplots(1, 2, figsize=(11.0, 3.9 + legend_in), squeeze=False)
    panels = list(grid[0])
    colors = palette([item.workload_id for item in drawn])
    for column, (axes, unit) in enumerate(zip(panels, UNITS.get(family, DEFAULT_UNITS), strict=True)):
        for item in drawn:
            values = item.prompt_lens if column == 0 else item.gen_lens
            if not values:
                continue
            xs, ys = ecdf(values)
            axes.step(xs, ys, where="post", color=colors[item.workload_id], linewidth=1.6,
                      label=f"{_kind_label(item)} (drawn, n={len(values)})")
            if item.source is not None and item.kind:
                source = source_curve(item.source)[column]
                xs, ys = ecdf(source)
                axes.step(xs, ys, where="post", color=colors[item.workload_id], linewidth=0.9, linestyle="--",
                          label=f"{item.kind} source, {len(source)} lengths")
        axes.set_xlabel(unit, fontsize=8)
        axes.set_ylabel("share at or below", fontsize=8)
        axes.set_ylim(0, 1.02)
        axes.set_title("input" if column == 0 else "output", fontsize=9)
        axes.grid(alpha=0.3)
    figure.suptitle(f"{family}: lengths drawn per workload (solid) and their source distribution (dashed)", fontsize=9)
    # Below the panels: steep CDFs of short draws fill any corner a legend inside could take.
    bottom = legend_in / figure.get_figheight()
    figure.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    handles, labels = panels[0].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=7, loc="lower center", ncols=2, bbox_to_anchor=(0.5, 0.0))
    return figure


def real_vs_synthetic_figure(columns: Sequence[RealColumn]):
    """A panel per real length column: its CDF, and lognormal and longtail draws at its median."""
    width = min(3, len(columns))
    rows = math.ceil(len(columns) / width)
    figure, grid = pyplot().subplots(rows, width, figsize=(4.8 * width, 3.6 * rows), squeeze=False)
    cells = [axes for row in grid for axes in row]
    for axes, column in zip(cells, columns, strict=False):
        xs, ys = ecdf(column.real)
        p50, p90 = percentile(column.real, 0.5), percentile(column.real, 0.9)
        axes.step(xs, ys, where="post", color="#1f77b4", linewidth=2.0,
                  label=f"real: P50 {p50:.0f}, P90 {p90:.0f}, max {max(column.real):.0f}")
        for kind, values in column.synthetic.items():
            color, style = SYNTHETIC_STYLE.get(kind, ("#7f7f7f", "-."))
            xs, ys = ecdf(values)
            axes.step(xs, ys, where="post", color=color, linestyle=style, linewidth=1.2,
                      label=f"{kind}: P90 {percentile(values, 0.9):.0f}, max {max(values)}")
        axes.set_xscale("log")
        axes.set_xlabel(column.unit + " (log scale)", fontsize=8)
        axes.set_ylabel("share at or below", fontsize=8)
        axes.set_ylim(0, 1.02)
        axes.set_title(f"{column.title} ({len(column.real)} rows)", fontsize=8)
        axes.grid(alpha=0.3, which="both")
        axes.legend(fontsize=6, loc="upper left")  # a CDF leaves that corner empty
    for axes in cells[len(columns):]:
        axes.set_visible(False)
    figure.suptitle("real length tables (harness/spec/data/) against the synthetic kinds at each table's median", fontsize=9)
    figure.tight_layout()
    return figure
