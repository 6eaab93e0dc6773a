"""A parsed trace -> the record's profile keys: per phase seconds per category, idle share,
wall time, work items per decode token, and the operators behind each category."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence

from harness.measure.profile.categories import CATEGORY_RANGE_PREFIX, decide
from harness.measure.profile.timeline import (
    PhaseRange,
    device_work,
    marker_ranges,
    phase_ranges,
    phase_stats,
    self_work,
    top_level_ops,
)
from harness.measure.profile.trace import Trace

TOP_OPS = 3  # operators listed per category


def annotated_categories(trace: Trace, phase: PhaseRange) -> frozenset[str]:
    """Categories whose ranges the runner opened inside this phase."""
    return frozenset(
        event.name[len(CATEGORY_RANGE_PREFIX):]
        for event in trace.host
        if not event.is_op and event.name.startswith(CATEGORY_RANGE_PREFIX) and phase.holds(event.start_s)
    )


def category_totals(stats: dict) -> tuple[dict[str, dict[str, float]], dict[str, list[list]]]:
    """Per phase, seconds per category (largest first); per category, its TOP_OPS operators."""
    breakdown: dict[str, dict[str, float]] = {}
    by_op: defaultdict[tuple[str, str], float] = defaultdict(float)
    for phase_name, found in stats.items():
        per_category: defaultdict[str, float] = defaultdict(float)
        for (category, name), seconds in found.by_category_s.items():
            per_category[category] += seconds
            by_op[(category, name)] += seconds
        breakdown[phase_name] = dict(sorted(per_category.items(), key=lambda kv: -kv[1]))
    top_ops: defaultdict[str, list[list]] = defaultdict(list)  # category -> [[operator, seconds], ...]
    for (category, name), seconds in sorted(by_op.items(), key=lambda kv: -kv[1]):
        if len(top_ops[category]) < TOP_OPS:
            top_ops[category].append([name, seconds])
    return breakdown, dict(top_ops)


DEVICE_OPS_UNIT = "launches"
# The host calls that start device work: cudaLaunchKernel(ExC), cuLaunchKernel(Ex), cudaGraphLaunch,
# cuGraphLaunch (copies and memsets are not kernel launches).
KERNEL_LAUNCH = re.compile(r"LaunchKernel|GraphLaunch|LaunchCooperativeKernel")


def count_calls(trace: Trace, ranges: Sequence[PhaseRange], stats: dict) -> None:
    """What ops_per_token counts, per phase. A GPU: the host's kernel and graph launches, not the
    kernels, since a CUDA graph runs a token's kernels from one launch and that saving is the
    lever's point. The CPU: calls from Python into the framework, the top-level ops."""
    if trace.on_device:
        starts = [launch.start_s for launch in trace.launches if KERNEL_LAUNCH.search(launch.name)]
    else:
        starts = [event.start_s for event in top_level_ops(trace.host)]
    for phase in ranges:
        stats[phase.phase].kernels = sum(1 for start_s in starts if phase.holds(start_s))  # a phase is a union of intervals


def summarize(trace: Trace) -> dict:
    # Llama's loop opens phase ranges; the staged runners' clocks leave markers (annotate.StageClock).
    ranges = phase_ranges(trace.host) or marker_ranges(trace.host)
    if not ranges:
        raise ValueError("the profiled iteration has no harness::phase:: ranges or harness::mark:: markers")
    if trace.on_device:
        work, unresolved = device_work(trace.host, trace.launches, trace.device)
        unit = DEVICE_OPS_UNIT
    else:
        work, unresolved = self_work(trace.host), []
        unit = "host ops"
    annotated = {phase.phase: annotated_categories(trace, phase) for phase in ranges}
    stats = phase_stats(ranges, work, lambda phase, chain: decide(chain, annotated[phase]), unresolved_graph_launches=unresolved)
    count_calls(trace, ranges, stats)
    breakdown, top_ops = category_totals(stats)
    decode = stats.get("decode")
    return {
        "breakdown": breakdown,
        "idle_frac": {phase: found.idle_frac for phase, found in stats.items()},
        "profile_wall_s": {phase: found.wall_s for phase, found in stats.items()},
        "ops_per_token": decode.kernels / decode.tokens if decode and decode.tokens else None,
        "ops_unit": unit,
        "top_ops": top_ops,
        "profile_reliable": {phase: found.reliable for phase, found in stats.items()},
        "profile_notes": [f"{phase}: {note}" for phase, found in stats.items() for note in found.notes],
        "annotated": {phase: sorted(names) for phase, names in annotated.items()},
    }


def accounted_fracs(record: dict) -> dict[str, float]:
    """Per phase: (categories + idle time) / the clock's own time for that phase of the profiled
    iteration. 1.0 means the profile accounts for all of it; unreliable phases are left out."""
    out = {}
    for phase, clock_s in record.get("profile_clock_s", {}).items():
        idle = record.get("idle_frac", {}).get(phase)
        wall_s = record.get("profile_wall_s", {}).get(phase)
        if idle is None or not wall_s or clock_s <= 0:
            continue
        out[phase] = (sum(record["breakdown"][phase].values()) + idle * wall_s) / clock_s
    return out


ACCOUNTED_TOLERANCE = 0.05  # categories + idle vs the profiled iteration's own clock, per phase
# ...or half a millisecond: a tiny prefill lasts ~4 ms, and one scheduler hiccup on a shared
# 2-core machine between the profiler's timeline and the clock marks is a few hundred us.
ACCOUNTED_SLACK_S = 0.0005


def profile_problems(record: dict, tolerance: float = ACCOUNTED_TOLERANCE, slack_s: float = ACCOUNTED_SLACK_S) -> list[str]:
    """What is wrong with a record's profile (the family suites' check): a measured case was
    profiled; every phase the clock timed is profiled, with categories and an idle share in
    [0, 1]; its categories + idle account for the clock's time within `tolerance` (or `slack_s`).
    [] when nothing is, or when every take of the profile was disturbed (its notes say so)."""
    if not record["breakdown"]:
        measured = record["status"] == "ok" and record["e2e_s"]
        return [f"measured, but not profiled: {record['profile_notes']}"] if measured else []
    if record["profile_contended"]:
        return []
    clock_s = {phase: seconds for phase, seconds in record.get("profile_clock_s", {}).items() if seconds > 0}
    problems = [f"{phase}: timed by the clock but not profiled" for phase in clock_s if phase not in record["breakdown"]]
    problems += [f"{phase}: profiled but not timed by the clock" for phase in record["breakdown"] if phase not in clock_s]
    for phase, categories in record["breakdown"].items():
        idle = record["idle_frac"].get(phase)
        if not record.get("profile_reliable", {}).get(phase, True):
            continue  # CUDA-graph replays the trace does not show: no idle share, by design
        if not categories or idle is None or not 0 <= idle <= 1:
            problems.append(f"{phase}: categories {categories}, idle share {idle}")
    for phase, frac in accounted_fracs(record).items():
        allowed = max(tolerance, slack_s / record["profile_wall_s"][phase])
        if abs(frac - 1) > allowed:
            problems.append(f"{phase}: categories + idle account for {frac:.1%} of the iteration")
    return problems
