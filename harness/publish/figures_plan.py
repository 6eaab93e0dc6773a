"""Which figures `harness figures` draws from a set of recorded runs, each with its caption (what
it shows, from which run), and which it leaves out with the reason: a figure without data is
never drawn empty. Planning reads the records only; drawing happens when a plan is rendered."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from harness.analyse.intervals import CONFIDENCE
from harness.publish import characterize as data
from harness.publish import characterize_charts as charts
from harness.publish import length_charts
from harness.publish.characterize import Run
from harness.publish.charts import chart_data
from harness.publish.figures import save_figure
from harness.publish.length_data import SYNTHETIC, drawn_lengths, real_columns


@dataclass
class Planned:
    stem: str  # file name in --out without the format suffix
    title: str
    caption: str  # one line: what the figure shows, and from which run
    render: Callable[[Path], list[Path]]  # stem path -> files written (PNG and SVG)
    notes: list[str] = field(default_factory=list)  # what the figure leaves out, and why


@dataclass(frozen=True)
class Omitted:
    title: str
    reason: str


@dataclass
class Sources:
    """The characterized records (later runs win per case id), each run's own records, and which
    run each record came from."""

    records: list[Mapping]
    per_run: list[tuple[Run, list[Mapping]]]
    origin: dict[int, Run]  # id(record) -> its run

    def runs_text(self, records: Sequence[Mapping]) -> str:
        runs = dict.fromkeys(self.origin[id(record)] for record in records)
        return "; ".join(run.label() for run in runs) or "no run"


def drawn(make: Callable[[], object]) -> Callable[[Path], list[Path]]:
    """A figure drawn only when rendered: planning every figure costs no matplotlib time."""
    return lambda stem: save_figure(make(), stem)


def plan_breakdowns(sources: Sources, families: Mapping[str, list[Mapping]]) -> tuple[list[Planned], list[Omitted]]:
    plans, omitted = [], []
    for family, records in families.items():
        found = data.breakdown(records)
        if not found:
            omitted.append(Omitted(f"operator categories: {family}", f"no ok {family} case has a profiled iteration "
                                   "recorded (a quick check, or a runner that records none yet)"))
            continue
        profiled = [r for r in records if chart_data(r)]
        caption = (f"Operator-category share of each profiled phase's wall time (idle hatched), "
                   f"{len(profiled)} {family} case(s), phases {', '.join(found)}; from {sources.runs_text(profiled)}.")
        title = data.family_title(family, profiled)
        plans.append(Planned(f"breakdown-{family}", f"Where the time goes: {family}", caption,
                             drawn(partial(charts.breakdown_figure, title, found))))
    return plans, omitted


def plan_idle(sources: Sources, families: Mapping[str, list[Mapping]]) -> tuple[list[Planned], list[Omitted]]:
    found = {family: idle for family, records in families.items() if (idle := data.idle_by_stack(records))}
    if not found:
        return [], [Omitted("idle share per phase", "no ok case has a reliable idle share recorded (no profiled iteration)")]
    used = [r for family in found for r in families[family] if r.get("idle_frac")]
    caption = (f"Share of each profiled phase's wall time in which the device ran nothing, median over workloads "
               f"per stack ({', '.join(found)}); from {sources.runs_text(used)}.")
    notes = [f"{family}: no idle share recorded" for family in families if family not in found]
    return [Planned("idle", "Idle share per phase, by stack", caption, drawn(partial(charts.idle_figure, found)), notes)], []


def plan_split(sources: Sources, families: Mapping[str, list[Mapping]]) -> tuple[list[Planned], list[Omitted]]:
    found = {}
    for family, records in families.items():
        labels = data.case_labels(records)
        cases = [(labels[r["id"]], split) for r in records if (split := data.e2e_split(r))]
        if cases:
            found[data.family_title(family, records)] = cases
    if not found:
        return [], [Omitted("prefill against decode", "no ok case has e2e samples with TTFT or stage samples")]
    used = [r for records in families.values() for r in records if data.e2e_split(r)]
    caption = (f"Share of each case's median end-to-end time in prefill (median TTFT) and decode (the rest), or in "
               f"each recorded stage (median of its samples); from {sources.runs_text(used)}.")
    notes = [f"{family}: no e2e samples with TTFT or stages" for family, records in families.items()
             if not any(data.e2e_split(r) for r in records)]
    return [Planned("e2e-split", "Prefill against decode", caption, drawn(partial(charts.split_figure, found)), notes)], []


def plan_tpot(sources: Sources, families: Mapping[str, list[Mapping]]) -> tuple[list[Planned], list[Omitted]]:
    plans, omitted = [], []
    for family, records in families.items():
        found = data.tpot_by_workload(records)
        if not found:
            omitted.append(Omitted(f"per-token latency: {family}", f"no ok {family} case recorded per-token (tpot_s) "
                                   "samples: it does not decode token by token"))
            continue
        used = [r for r in records if r["workload_id"] in found]
        caption = (f"CDF of the time per output token (every timed token after the first), {len(found)} {family} "
                   f"workload(s), one line per stack; from {sources.runs_text(used)}.")
        plans.append(Planned(f"tpot-{family}", f"Per-token latency: {family}", caption,
                             drawn(partial(charts.tpot_figure, family, found))))
    return plans, omitted


def plan_lengths(sources: Sources, families: Mapping[str, list[Mapping]]) -> tuple[list[Planned], list[Omitted]]:
    plans, omitted = [], []
    for family, records in families.items():
        found = drawn_lengths(records)
        if not found:
            omitted.append(Omitted(f"lengths: {family}", f"no ok {family} case recorded its drawn lengths (prompt_lens)"))
            continue
        kinds = ", ".join(dict.fromkeys(item.kind or "fixed" for item in found))
        used = [r for r in records if r["workload_id"] in {item.workload_id for item in found}]
        caption = (f"Input and output lengths the {len(found)} {family} workload(s) drew in their timed iterations "
                   f"(solid; kinds {kinds}) beside the distribution each draws from (dashed); "
                   f"from {sources.runs_text(used)}.")
        plans.append(Planned(f"lengths-{family}", f"Workload lengths: {family}", caption,
                             drawn(partial(length_charts.lengths_figure, family, found))))
    columns = real_columns()
    caption = ("The committed real length tables (HumanEval, MovieLens-100k, Asterisk telephone prompts; "
               f"harness/spec/data/) against {' and '.join(SYNTHETIC)} draws at each table's median from the "
               "harness's own seeded generator; from the tables shipped with the package, not from a run.")
    plans.append(Planned("lengths-real-vs-synthetic", "Real against synthetic lengths", caption,
                         drawn(partial(length_charts.real_vs_synthetic_figure, columns))))
    return plans, omitted


def plan_ladders(sources: Sources) -> tuple[list[Planned], list[Omitted]]:
    from harness.analyse.ladder import summarize
    from harness.publish.ladder import render_chart

    plans, omitted = [], []
    for run, records in sources.per_run:
        summary = summarize(records)
        suffix = "" if len(sources.per_run) == 1 else f"-{Path(run.file).stem}"
        if not summary.ladders:
            why = "; ".join(f"{workload}: {reason}" for workload, reason in summary.missing)
            why = why or "no workload has a measured baseline and a second step"
            omitted.append(Omitted(f"lever ladder{suffix}", f"{run.file}: {why}"))
            continue
        caption = (f"Lever ladder: each workload's cumulative e2e speed-up over its baseline stack at each step "
                   f"(Hodges-Lehmann {100 * CONFIDENCE:.0f}% CI), and each family's combined speed-up; from {run.label()}.")
        notes = [f"{workload}: no ladder: {reason}" for workload, reason in summary.missing]
        chart = partial(render_chart, summary.ladders, summary.per_family, summary.overall)
        plans.append(Planned(f"ladder{suffix}", "Lever ladder", caption, chart, notes))
    return plans, omitted


PLANNERS = (plan_breakdowns, plan_idle, plan_split, plan_tpot, plan_lengths)


def plan(sources: Sources) -> tuple[list[Planned], list[Omitted]]:
    """Every figure in page order, and those left out with the reason."""
    families = data.by_family(data.usable(sources.records))
    plans, omitted = [], []
    for planner in PLANNERS:
        found, left_out = planner(sources, families)
        plans += found
        omitted += left_out
    found, left_out = plan_ladders(sources)
    return plans + found, omitted + left_out
