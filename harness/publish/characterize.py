"""The paper's characterization as data, from recorded case records only (no re-running, no
torch): where each phase's time goes, the idle share per phase and stack, the split of
end-to-end time between prefill and decode (or a family's own stages), and per-token latency.

Pure functions over case records (docs/records.md); harness/publish/characterize_charts.py
draws them. Only `ok` cases are characterized: a failed or contended case's samples describe
the failure or the machine, not the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from harness.analyse.stats import median
from harness.publish.charts import chart_data
from harness.publish.profile_table import in_pipeline_order, recorded_phases
from harness.store.records import is_number, positive_samples


@dataclass(frozen=True)
class Run:
    """Where records come from: the results file, and the commit and date that recorded it."""

    file: str
    commit: str
    dirty: bool | None
    created_utc: str

    def label(self) -> str:
        commit = f"commit {self.commit[:10]}" if self.commit else "commit unknown"
        dirty = " (uncommitted changes)" if self.dirty else ""
        return f"{self.file} ({commit}{dirty}, recorded {self.created_utc or 'at an unknown time'})"


def run_of(file_name: str, data: Mapping) -> Run:
    environment = data.get("environment", {})
    commit = environment.get("git_commit")
    created = data.get("created_utc")
    return Run(file_name, commit if isinstance(commit, str) else "", environment.get("git_dirty"),
               created if isinstance(created, str) else "")


def usable(records: Iterable[Mapping]) -> list[Mapping]:
    return [record for record in records if record.get("status") == "ok"]


def by_family(records: Iterable[Mapping]) -> dict[str, list[Mapping]]:
    """Records per family, families and records in the order they were recorded."""
    found: dict[str, list[Mapping]] = {}
    for record in records:
        found.setdefault(record["family"], []).append(record)
    return found


def workload_tail(record: Mapping) -> str:
    """The workload id without family, task and preset (`b1-lognormal-p64-g32-fp32`)."""
    prefix = "-".join(str(record.get(key, "")) for key in ("family", "task", "preset")) + "-"
    return record["workload_id"].removeprefix(prefix)


def case_labels(records: Sequence[Mapping]) -> dict[str, str]:
    """{case id: label} within one family: the stack, after the workload where there are several."""
    several = len({record["workload_id"] for record in records}) > 1
    return {record["id"]: f"{workload_tail(record)} / {record['stack']}" if several else record["stack"]
            for record in records}


def family_title(family: str, records: Sequence[Mapping]) -> str:
    """The family, and its one workload where the labels name only stacks (case_labels)."""
    workloads = {workload_tail(record) for record in records}
    return f"{family}: {workloads.pop()}" if len(workloads) == 1 else family


def union_phases(records: Iterable[Mapping]) -> list[str]:
    """Every phase any record profiled, in the order an iteration runs them where known."""
    return in_pipeline_order(phase for record in records for phase in recorded_phases(record))


def breakdown(records: Sequence[Mapping]) -> dict[str, list[tuple[str, dict[str, float]]]]:
    """{phase: [(case, {category: share of the phase's wall time, idle included})]} of one
    family's profiled cases; empty when none was profiled."""
    labels = case_labels(records)
    shares = {labels[record["id"]]: chart_data(record) for record in records}
    out: dict[str, list[tuple[str, dict[str, float]]]] = {}
    for phase in union_phases(records):
        cases = [(case, found[phase]) for case, found in shares.items() if phase in found]
        if cases:
            out[phase] = cases
    return out


def idle_by_stack(records: Sequence[Mapping]) -> dict[str, dict[str, list[float]]]:
    """{phase: {stack: [idle share of each workload's profiled phase]}}; a phase whose idle share
    was not reliable (recorded null) is left out."""
    out: dict[str, dict[str, list[float]]] = {}
    for phase in union_phases(records):
        for record in records:
            idle = record.get("idle_frac", {}).get(phase)
            if is_number(idle):
                out.setdefault(phase, {}).setdefault(record["stack"], []).append(float(idle))
    return out


# What is left of e2e outside the recorded stages (the runner's own glue, the output check's
# bookkeeping): drawn only when it is at least this share, so rounding is not a segment.
REMAINDER_MIN = 0.005


def e2e_split(record: Mapping) -> dict[str, float]:
    """Shares of the median end-to-end time: each recorded stage's median (stages_s), or else
    prefill (median TTFT) against decode (the rest); empty without e2e samples."""
    e2e = record.get("e2e_s") or []
    if not positive_samples(e2e) or not e2e:
        return {}
    total = median(e2e)
    recorded = record.get("stages_s") or {}
    stages = {name.removesuffix("_s"): median(recorded[name]) for name in in_pipeline_order(recorded)
              if positive_samples(recorded[name]) and recorded[name]}
    if not stages and positive_samples(record.get("ttft_s")) and record.get("ttft_s"):
        prefill = min(median(record["ttft_s"]), total)
        stages = {"prefill": prefill, "decode": total - prefill}
    if not stages:
        return {}
    scale = max(total, sum(stages.values()))  # stages that overlap (or outlast e2e) still sum to 1
    shares = {name: seconds / scale for name, seconds in stages.items()}
    rest = 1.0 - sum(shares.values())
    if rest >= REMAINDER_MIN:
        shares["outside the stages"] = rest
    return shares


def tpot_by_workload(records: Sequence[Mapping]) -> dict[str, dict[str, list[float]]]:
    """{workload: {stack: TPOT samples, seconds}} of one family; empty for a family that does not
    decode token by token (HSTU scores in one pass)."""
    out: dict[str, dict[str, list[float]]] = {}
    for record in records:
        samples = record.get("tpot_s") or []
        if positive_samples(samples) and samples:
            out.setdefault(record["workload_id"], {})[record["stack"]] = [float(v) for v in samples]
    return out
