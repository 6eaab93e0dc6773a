"""Stacked bar charts of where the time goes, per case, from recorded results (no re-running).

One figure per case: a bar per phase, stacked by category share of the profiled iteration's
wall time, idle included. PNG and SVG, matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from harness.measure.profile.categories import CATEGORIES
from harness.measure.profile.trace import trace_file_name
from harness.publish.figures import pyplot, save_figure
from harness.publish.profile_table import phase_shares, recorded_phases

ORDER = ("idle", *CATEGORIES)  # idle at the bottom: the paper's headline
COLORS = {
    "idle": "#f0f0f0", "linear": "#1f77b4", "attention": "#d62728", "norm": "#9467bd",
    "elementwise": "#ff7f0e", "embedding": "#8c564b", "conv": "#e377c2", "kv_cache": "#2ca02c",
    "sampling": "#17becf", "communication": "#bcbd22", "fused": "#aec7e8", "other": "#636363",
}


def chart_data(record: Mapping) -> dict[str, dict[str, float]]:
    """{phase: {category: share}} in plotting order; phases without a profile are left out."""
    out = {}
    for phase in recorded_phases(record):
        shares = phase_shares(record, phase)
        if shares:
            out[phase] = {name: shares[name] for name in ORDER if shares.get(name)}
    return out


def draw_stack(axes, x: float, shares: Mapping[str, float], width: float = 0.6, named: bool = True) -> None:
    """One bar at x stacked by share (percent), idle hatched; a segment of 4% or more says its
    share (and its category where `named`: narrow bars leave that to the legend)."""
    bottom = 0.0
    for name, share in shares.items():
        axes.bar(x, 100 * share, bottom=100 * bottom, color=COLORS.get(name, "#000000"), width=width,
                 label=name, edgecolor="#555555" if name == "idle" else "white", linewidth=0.5,
                 hatch="//" if name == "idle" else None)
        if share >= 0.04:
            text = f"{name} {100 * share:.0f}%" if named else f"{100 * share:.0f}%"
            axes.text(x, 100 * (bottom + share / 2), text, ha="center", va="center", fontsize=7 if named else 6)
        bottom += share


def render_case(record: Mapping, out_dir: Path) -> list[Path]:
    data = chart_data(record)
    figure, axes = pyplot().subplots(figsize=(6.4, 4.2))
    for x, shares in enumerate(data.values()):
        draw_stack(axes, x, shares)
    wall = record.get("profile_wall_s", {})
    axes.set_xticks(range(len(data)), [f"{phase}\n{1e3 * wall.get(phase, 0):.1f} ms" for phase in data])
    axes.set_ylabel("share of the profiled iteration's wall time (%)")
    axes.set_ylim(0, 105)
    axes.set_title(record["id"], fontsize=8)
    handles, labels = axes.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    axes.legend(unique.values(), unique.keys(), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.tight_layout()
    return save_figure(figure, Path(out_dir) / trace_file_name(record["id"])[: -len(".json")])


def render_all(records: Iterable[Mapping], out_dir: Path) -> tuple[list[Path], list[str]]:
    """(files written, ids of cases without a profile to chart)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    for record in records:
        if chart_data(record):
            written += render_case(record, out_dir)
        else:
            skipped.append(record["id"])
    return written, skipped
