"""The lever ladder: per workload, the cumulative stacks from the baseline to all levers that
applied, the speed-up of each step and the combined one, each with a confidence interval; then
per family and across families, the geometric mean (the paper's "3.88x" is such a figure).

Pure functions over case records (no I/O, no torch). Speed-ups come from e2e samples measured
in one run, never across runs. Their intervals therefore cover one run's noise only; the
between-run spread (three quiet CPU runs of the same matrix gave 1.74x, 1.51x and 1.77x) is
what `across_runs` measures, from the combined speed-ups of repeated runs.

Where a workload's stacks were measured in interleaved rounds (harness.measure.workload), a
step's speed-up comes from per-round paired ratios: each round's total time of one stack over
the other's, the same draws seconds apart, so the machine's drift and bursts of load cancel.

Why Hodges-Lehmann: the speed-up is exp(median of all pairwise log(baseline_i / candidate_j)),
and its interval comes from the same pairwise differences (the distribution-free interval that
inverts the Mann-Whitney test), so the estimate and its interval always agree; a ratio of two
medians with a bootstrap interval is erratic with a dozen samples. Where lengths follow a
distribution, every stack ran the same seeded draws in the same order, so iterations are paired
by their input and the signed-rank version applies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from harness.analyse.intervals import (
    CONFIDENCE,
    Interval,
    geomean_interval,
    log_t_interval,
    paired_speedup_interval,
    speedup_interval,
)
from harness.analyse.stats import median
from harness.families import FAMILIES
from harness.levers import LEVERS

LADDER_METRIC = "e2e_s"


def _draws(record: Mapping) -> tuple[list[int], list[int]]:
    """The (prompt, generated) lengths of each iteration; empty where the record has none, or
    not one pair per iteration (a hand-edited file: then the iterations cannot be paired by input)."""
    prompts, gens = list(record.get("prompt_lens") or []), list(record.get("gen_lens") or [])
    return (prompts, gens) if len(prompts) == len(gens) else ([], [])


def round_totals(record: Mapping) -> dict[int, float]:
    """Per round of an interleaved measurement, the sum of the round's LADDER_METRIC samples;
    empty where the record was not measured in interleaved rounds."""
    rounds = record.get("rounds") or {}
    indices, samples = record.get("round_index") or [], record.get(LADDER_METRIC) or []
    if rounds.get("mode") != "interleaved" or len(indices) != len(samples):
        return {}
    totals: dict[int, float] = {}
    for index, seconds in zip(indices, samples, strict=True):
        totals[index] = totals.get(index, 0.0) + seconds
    return totals


def round_pairs(baseline: Mapping, candidate: Mapping) -> tuple[list[float], list[float]] | None:
    """The two stacks' per-round totals over the rounds both measured (the same draws, minutes
    apart at most), or None where they were not measured in the same interleaved rounds."""
    base, cand = round_totals(baseline), round_totals(candidate)
    if baseline.get("rounds", {}).get("executed") != candidate.get("rounds", {}).get("executed"):
        return None  # not the same rounds (another workload run, another process)
    common = sorted(set(base) & set(cand))
    if len(common) < 2:
        return None
    return [base[i] for i in common], [cand[i] for i in common]


def step_interval(baseline: Mapping, candidate: Mapping) -> Interval:
    """From per-round paired ratios where both stacks ran in the same interleaved rounds; else
    paired by iteration when both ran the same varying draws of lengths; else unpaired."""
    paired = round_pairs(baseline, candidate)
    if paired is not None:
        return paired_speedup_interval(*paired)
    draws = _draws(baseline)
    lengths_vary = len(set(zip(*draws, strict=True))) > 1
    if lengths_vary and draws == _draws(candidate) and len(baseline[LADDER_METRIC]) == len(draws[0]):
        return paired_speedup_interval(baseline[LADDER_METRIC], candidate[LADDER_METRIC])
    return speedup_interval(baseline[LADDER_METRIC], candidate[LADDER_METRIC])


@dataclass(frozen=True)
class Step:
    stack: str
    added: str  # the lever this step adds ("" for the baseline)
    e2e_p50_s: float
    tpot_p50_s: float | None
    step: Interval | None  # over the previous step (None for the baseline)
    cumulative: Interval | None  # over the baseline (None for the baseline)


@dataclass(frozen=True)
class Ladder:
    workload_id: str
    family: str
    task: str
    steps: tuple[Step, ...]
    left_out: tuple[tuple[str, str], ...]  # (stack, why it is not a step)
    mode: str = ""  # how the workload was measured: "interleaved", "sequential" (rounds.mode), "" unknown

    @property
    def combined(self) -> Interval | None:
        return self.steps[-1].cumulative if len(self.steps) > 1 else None


def _usable(record: Mapping) -> str:
    """Why a record cannot be a step; "" when it can."""
    if record.get("status") == "contended":
        return str(record.get("message") or "contended")
    if record.get("status") != "ok":
        return f"status {record.get('status')}"
    if not record.get("outputs_match"):
        return "outputs differ from the baseline stack's"
    if not record.get(LADDER_METRIC):
        return "not measured (quick check)"
    return ""


def follows(previous: frozenset, candidate: frozenset, baseline: frozenset, slot_of: Callable[[str], str]) -> bool:
    """Whether `candidate` is one step up from `previous`: one lever added, or one of the
    baseline's own levers swapped for another of its slot (eager -> sdpa, padded -> fixed).
    Each step grows the stack or sheds a baseline lever, so no chain can loop."""
    added, removed = candidate - previous, previous - candidate
    if len(added) != 1 or len(removed) > 1:
        return False
    if not removed:
        return True
    (new,), (old,) = added, removed
    return old in baseline and slot_of(new) == slot_of(old)


def longest_chain(baseline: frozenset, stacks: Sequence[frozenset], slot_of: Callable[[str], str]) -> list[frozenset]:
    """The longest chain of steps (see `follows`) from the baseline through the given stacks;
    ties go to the stack declared (or run) first."""
    best: dict[frozenset, list[frozenset]] = {}

    def walk(current: frozenset) -> list[frozenset]:
        if current not in best:
            tails = [walk(s) for s in stacks if follows(current, s, baseline, slot_of)]
            best[current] = [current] + max(tails, key=len, default=[])  # max keeps the first longest
        return best[current]

    return walk(baseline)


def _p50(record: Mapping, metric: str) -> float | None:
    samples = record.get(metric) or []
    return median(samples) if samples else None


def ladder(records: Sequence[Mapping], baseline: str, slot_of: Callable[[str], str]) -> Ladder | None:
    """The ladder of one workload's records; None when its baseline stack was not measured."""
    why_not = {r["stack"]: _usable(r) for r in records}
    usable = {r["stack"]: r for r in records if not why_not[r["stack"]]}
    left_out = [(stack, why) for stack, why in why_not.items() if why]
    if baseline not in usable:
        return None
    levers_of = {frozenset(stack.split("+")): stack for stack in usable}
    chain = [levers_of[s] for s in longest_chain(frozenset(baseline.split("+")), list(levers_of), slot_of)]
    left_out += [(stack, "not on the longest cumulative chain") for stack in usable if stack not in chain]
    base = usable[baseline]
    # A usable record has its LADDER_METRIC samples (_usable), so their median is always there.
    steps = [Step(baseline, "", median(base[LADDER_METRIC]), _p50(base, "tpot_s"), None, None)]
    for previous, stack in pairwise(chain):
        record = usable[stack]
        (added,) = set(stack.split("+")) - set(previous.split("+"))
        steps.append(Step(
            stack, added, median(record[LADDER_METRIC]), _p50(record, "tpot_s"),
            step_interval(usable[previous], record),
            step_interval(base, record),
        ))
    first = records[0]
    mode = (base.get("rounds") or {}).get("mode", "")
    return Ladder(first["workload_id"], first["family"], first["task"], tuple(steps), tuple(left_out), mode)


def baseline_of(family: str) -> str | None:
    spec = FAMILIES.get(family)
    return "+".join(spec.baseline) if spec else None


def lever_slot(name: str) -> str:
    return LEVERS.get(name).slot


def ladders(records: Iterable[Mapping], slot_of: Callable[[str], str] = lever_slot) -> list[Ladder]:
    """One ladder per workload (run order kept), for workloads whose baseline was measured."""
    by_workload: dict[str, list[Mapping]] = {}
    for record in records:
        by_workload.setdefault(record["workload_id"], []).append(record)
    found = []
    for group in by_workload.values():
        baseline = baseline_of(group[0]["family"])
        built = ladder(group, baseline, slot_of) if baseline else None
        if built is not None and built.combined is not None:
            found.append(built)
    return found


def without_ladder(records: Iterable[Mapping]) -> list[tuple[str, str]]:
    """(workload, why) for each workload whose baseline stack ran but cannot be a step (contended,
    failed): said in the ladder table, never a silent gap."""
    found = []
    for record in records:
        if record["stack"] == baseline_of(record["family"]) and (why := _usable(record)):
            found.append((record["workload_id"], f"baseline {record['stack']}: {why}"))
    return found


def family_speedups(found: Sequence[Ladder]) -> dict[str, Interval]:
    """Per family, the geometric mean of its workloads' combined speed-ups."""
    per_family: dict[str, list[Interval]] = {}
    for item in found:
        if item.combined is not None:  # always, for ladders(): it keeps those with a second step
            per_family.setdefault(item.family, []).append(item.combined)
    return {family: geomean_interval(intervals) for family, intervals in per_family.items()}


def overall_speedup(per_family: Mapping[str, Interval]) -> Interval | None:
    """The geometric mean across families (each family weighs the same, whatever its workloads)."""
    return geomean_interval(list(per_family.values())) if per_family else None


@dataclass(frozen=True)
class LadderSummary:
    ladders: tuple[Ladder, ...]
    per_family: Mapping[str, Interval]
    overall: Interval | None
    missing: tuple[tuple[str, str], ...] = ()  # without_ladder: workloads whose baseline cannot be a step


def summarize(records: Iterable[Mapping]) -> LadderSummary:
    records = list(records)
    found = ladders(records)
    per_family = family_speedups(found)
    return LadderSummary(tuple(found), per_family, overall_speedup(per_family), tuple(without_ladder(records)))


ALL_FAMILIES = "all families"


@dataclass(frozen=True)
class AcrossRuns:
    """Per family (and ALL_FAMILIES) the combined speed-up of each run, and their interval."""

    per_run: Mapping[str, tuple[float, ...]]
    interval: Mapping[str, Interval]


def _chains(summary: LadderSummary, family: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((item.workload_id, item.steps[-1].stack) for item in summary.ladders if item.family == family))


def across_runs(summaries: Sequence[LadderSummary], confidence: float = CONFIDENCE) -> AcrossRuns:
    """The combined speed-ups of repeated runs of one matrix. A family's runs must have climbed
    the same ladders (workloads and top stacks): otherwise their figures measure different things,
    and a ValueError says which family differs."""
    per_run: dict[str, tuple[float, ...]] = {}
    for family in sorted({f for summary in summaries for f in summary.per_family}):
        chains = {_chains(summary, family) for summary in summaries}
        if len(chains) > 1 or any(family not in summary.per_family for summary in summaries):
            raise ValueError(f"{family}: the runs climbed different ladders (workloads or stacks differ)")
        per_run[family] = tuple(summary.per_family[family].estimate for summary in summaries)
    if per_run:  # then every run has a family's speed-up (checked above), so an overall one
        overall = [summary.overall for summary in summaries]
        per_run[ALL_FAMILIES] = tuple(interval.estimate for interval in overall if interval is not None)
        if len(per_run[ALL_FAMILIES]) < len(summaries):
            raise ValueError("a run has family speed-ups but no overall one")
    return AcrossRuns(per_run, {name: log_t_interval(values, confidence) for name, values in per_run.items()})
