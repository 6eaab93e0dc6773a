"""The series a case publishes to the asv history: its gated metrics, and beside them its
breakdown (issue 15): the time of each of its stages, the seconds of each operator category in
each phase of the profiled iteration, and each phase's idle share.

The breakdown is recorded, not gated (harness.analyse.gate judges GATED_METRICS only): it is
there so that beside a step in a case's TPOT the pages show which stage and which category
moved. Stage times are samples (one per timed iteration) with asv's statistics; categories and
idle shares come from the one profiled iteration, so they are single values (asv `track`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from harness.analyse.gate import GATED_METRICS, metric_samples

# metric -> (asv benchmark type, unit); "time" + "seconds" makes asv print and graph durations.
METRIC_KINDS = {
    "ttft_s": ("time", "seconds"),
    "tpot_s": ("time", "seconds"),
    "e2e_s": ("time", "seconds"),
    "peak_mem_bytes": ("track", "bytes"),
}
assert set(METRIC_KINDS) == set(GATED_METRICS), "every gated metric is published"

NAME_PART = re.compile(r"[^A-Za-z0-9_+\-]")


@dataclass(frozen=True)
class Series:
    """One asv benchmark of a case: the last part of its name, asv's type and unit, its samples."""

    metric: str  # e.g. "e2e_s", "stage.vocoder_s", "breakdown.decode.linear_s", "idle.decode"
    kind: str
    unit: str
    samples: list[float]
    gated: bool


def part(name: str) -> str:
    """A name part asv can use in a dotted benchmark name (asv splits on the dots)."""
    return NAME_PART.sub("_", str(name))


def case_series(record: Mapping) -> Iterator[Series]:
    """Every series of a case that has samples: the gated metrics first, then the breakdown."""
    for metric, (kind, unit) in METRIC_KINDS.items():
        yield Series(metric, kind, unit, [float(value) for value in metric_samples(record, metric)], True)
    yield from breakdown_series(record)


def breakdown_series(record: Mapping) -> Iterator[Series]:
    """Stage times (samples), per-phase category seconds and idle shares (the profiled iteration's)."""
    for stage, seconds in sorted((record.get("stages_s") or {}).items()):
        yield Series(f"stage.{part(stage)}_s", "time", "seconds", [float(value) for value in seconds], False)
    for phase, categories in (record.get("breakdown") or {}).items():
        for category, seconds in categories.items():
            yield Series(f"breakdown.{part(phase)}.{part(category)}_s", "track", "seconds", [float(seconds)], False)
    for phase, share in (record.get("idle_frac") or {}).items():
        if share is not None:
            yield Series(f"idle.{part(phase)}", "track", "fraction", [float(share)], False)
