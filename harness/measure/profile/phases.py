"""Phases as intervals of host time: from the profiled iteration's phase ranges or its clock's
markers, and their consecutive windows (which extend to the device work each interval launched).

A phase that alternates with others (beam search's KV reorder between decode steps, guidance
between forwards) is several intervals; no time counts to two phases. Pure: tested on synthetic
timelines.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.measure.profile.events import HostEvent, Work

PHASE_RANGE_PREFIX = "harness::phase::"
MARK_RANGE_PREFIX = "harness::mark::"  # an instant at a clock mark, named by the phase it ends

Interval = tuple[float, float]


@dataclass(frozen=True)
class PhaseRange:
    """A phase: its time on the host as intervals in order (a stage that alternates with others,
    beam search's reorder between decode steps, is several), start_s..end_s their hull."""

    phase: str
    start_s: float
    end_s: float
    tokens: int  # ranges (or marked spans) merged into this phase (decode: one per token)
    intervals: tuple[Interval, ...] = ()  # (): one interval, start_s..end_s

    def spans(self) -> tuple[Interval, ...]:
        return self.intervals or ((self.start_s, self.end_s),)

    def interval_of(self, time_s: float) -> int | None:
        """Index of the interval holding this time (None: outside the phase)."""
        spans = self.spans()
        index = bisect_right(spans, (time_s, float("inf"))) - 1
        return index if index >= 0 and time_s < spans[index][1] else None

    def holds(self, time_s: float) -> bool:
        return self.interval_of(time_s) is not None


def _phases(named: Sequence[tuple[str, float, float]]) -> list[PhaseRange]:
    """Named host intervals in time order -> phases in order of first start. Consecutive intervals
    of one phase with no other phase's between them merge, the gap between them included, so a
    phase that runs once (Llama's prefill; its decode, one range per token) is one interval."""
    runs: dict[str, list[list[float]]] = {}
    counts: Counter = Counter()
    for index, (name, lo, hi) in enumerate(named):
        intervals = runs.setdefault(name, [])
        if index and named[index - 1][0] == name:
            intervals[-1][1] = max(intervals[-1][1], hi)
        else:
            intervals.append([lo, hi])
        counts[name] += 1
    return [PhaseRange(name, spans[0][0], spans[-1][1], counts[name], tuple((lo, hi) for lo, hi in spans))
            for name, spans in runs.items()]


def phase_ranges(host: Sequence[HostEvent]) -> list[PhaseRange]:
    """`harness::phase::<name>` ranges as phases (see _phases), in order of first start."""
    ranges = sorted((e for e in host if not e.is_op and e.name.startswith(PHASE_RANGE_PREFIX)), key=lambda e: e.start_s)
    return _phases([(event.name[len(PHASE_RANGE_PREFIX):], event.start_s, event.end_s) for event in ranges])


def marker_ranges(host: Sequence[HostEvent]) -> list[PhaseRange]:
    """Phases from `harness::mark::<phase>` markers (harness.measure.profile.annotate.StageClock),
    each ending where its range ends: the time from one marker to the next belongs to the next
    one's phase, as a clock mark names the part of the run that just ended; a marker without a
    name (the clock's start, or a mark of no stage) ends a span that counts to no phase."""
    markers = sorted(
        (event.end_s, event.name[len(MARK_RANGE_PREFIX):])
        for event in host if not event.is_op and event.name.startswith(MARK_RANGE_PREFIX)
    )
    named = [(name, lo, hi) for (lo, _), (hi, name) in zip(markers, markers[1:], strict=False) if name]
    return _phases(named)


def interval_windows(ranges: Sequence[PhaseRange], work: Sequence[Work]) -> dict[str, list[Interval]]:
    """Consecutive windows, one per interval of every phase in time order: a window lasts from
    its interval's start (or the previous window's end) until both the interval and the last
    device work launched in it have ended; so no time counts to two phases."""
    spans = sorted((lo, hi, phase.phase) for phase in ranges for lo, hi in phase.spans())
    launched = sorted((w.host_s, w.end_s) for w in work)
    windows: dict[str, list[Interval]] = {phase.phase: [] for phase in ranges}
    previous_end = float("-inf")
    for lo, hi, name in spans:
        first = bisect_left(launched, (lo, float("-inf")))
        owned_ends = [end for host_s, end in launched[first:bisect_left(launched, (hi, float("-inf")))]]
        start = max(lo, previous_end)
        end = max([hi, start, *owned_ends])
        windows[name].append((start, end))
        previous_end = end
    return windows
