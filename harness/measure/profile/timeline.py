"""Busy, idle and per-category time over phase windows: pure functions on a synthetic or real timeline.

Host events (operators and ranges, one thread) nest by time; device spans are work on the
device (kernels, copies; on a CPU run, each operator's self time). Overlapping spans share
their common time equally, so the categories of a window add up to its busy time and
busy + idle = the window, by construction; the check against the clock lives with the caller.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field

# The timeline's events live in `events`, phases as intervals of host time in `phases` (which reads
# the events); both re-exported here, where their statistics are.
from harness.measure.profile.events import DeviceSpan as DeviceSpan
from harness.measure.profile.events import HostEvent as HostEvent
from harness.measure.profile.events import Launch as Launch
from harness.measure.profile.events import Work
from harness.measure.profile.phases import MARK_RANGE_PREFIX as MARK_RANGE_PREFIX
from harness.measure.profile.phases import PHASE_RANGE_PREFIX as PHASE_RANGE_PREFIX
from harness.measure.profile.phases import PhaseRange, interval_windows
from harness.measure.profile.phases import marker_ranges as marker_ranges
from harness.measure.profile.phases import phase_ranges as phase_ranges


@dataclass
class PhaseStats:
    window_s: tuple[float, float]  # the hull of the phase's windows
    busy_s: float
    by_category_s: dict  # classify key -> seconds
    kernels: int
    tokens: int
    reliable: bool = True
    notes: list[str] = field(default_factory=list)
    windows_s: list[tuple[float, float]] = field(default_factory=list)  # [] for one window, window_s

    @property
    def wall_s(self) -> float:
        return sum(hi - lo for lo, hi in self.windows_s or [self.window_s])

    @property
    def idle_frac(self) -> float | None:
        if not self.reliable or self.wall_s <= 0:
            return None
        return max(0.0, 1.0 - self.busy_s / self.wall_s)


def sweep(spans: Iterable[tuple[float, float, Hashable]], window: tuple[float, float]) -> tuple[float, dict]:
    """(busy seconds, seconds per category) of spans clipped to the window; overlap shared equally."""
    lo, hi = window
    edges = []
    for start, end, category in spans:
        start, end = max(start, lo), min(end, hi)
        if end > start:
            edges += [(start, 1, category), (end, -1, category)]
    edges.sort(key=lambda edge: (edge[0], edge[1]))
    active: Counter = Counter()
    count = 0
    busy = 0.0
    shares: dict[str, float] = {}
    previous = lo
    for time_s, delta, category in edges:
        if count and time_s > previous:
            step = time_s - previous
            busy += step
            for name, n in active.items():
                if n:
                    shares[name] = shares.get(name, 0.0) + step * n / count
        previous = time_s
        active[category] += delta
        count += delta
    return busy, shares


def nest(events: Sequence[HostEvent]) -> list[tuple[HostEvent, tuple[str, ...], list[HostEvent], bool]]:
    """Each event with the names enclosing it (outermost first, itself last), its direct
    children, and whether an op encloses it. Events are on one thread and nest properly."""
    ordered = sorted(events, key=lambda e: (e.start_s, -e.end_s))
    out: list[tuple[HostEvent, tuple[str, ...], list[HostEvent], bool]] = []
    stack: list[tuple[HostEvent, tuple[str, ...], list[HostEvent], bool]] = []
    for event in ordered:
        while stack and stack[-1][0].end_s <= event.start_s:
            stack.pop()
        parent = stack[-1] if stack else None
        chain = (parent[1] if parent else ()) + (event.name,)
        under_op = parent is not None and (parent[0].is_op or parent[3])
        entry: tuple[HostEvent, tuple[str, ...], list[HostEvent], bool] = (event, chain, [], under_op)
        if parent:
            parent[2].append(event)
        stack.append(entry)
        out.append(entry)
    return out


def chains_at(host: Sequence[HostEvent], times: Sequence[float]) -> list[tuple[str, ...]]:
    """For each time, the chain of the innermost host event containing it (empty if none)."""
    ordered = sorted(host, key=lambda e: (e.start_s, -e.end_s))
    result: list[tuple[str, ...]] = [()] * len(times)
    stack: list[tuple[HostEvent, tuple[str, ...]]] = []
    index = 0
    for position in sorted(range(len(times)), key=lambda i: times[i]):
        time_s = times[position]
        while index < len(ordered) and ordered[index].start_s <= time_s:
            event = ordered[index]
            while stack and stack[-1][0].end_s <= event.start_s:
                stack.pop()
            stack.append((event, (stack[-1][1] if stack else ()) + (event.name,)))
            index += 1
        while stack and stack[-1][0].end_s <= time_s:
            stack.pop()
        result[position] = stack[-1][1] if stack else ()
    return result


def self_work(events: Sequence[HostEvent]) -> list[Work]:
    """Host operators' self time as busy pieces: each op's interval minus its child ops'.

    Time inside ranges but outside any op (the Python between ops) is not work: it is idle."""
    pieces = []
    for event, chain, children, _ in nest(events):
        if not event.is_op:
            continue
        cursor = event.start_s
        for child in sorted((c for c in children if c.is_op), key=lambda c: c.start_s):
            if child.start_s > cursor:
                pieces.append(Work(cursor, child.start_s, chain, event.start_s))
            cursor = max(cursor, child.end_s)
        if event.end_s > cursor:
            pieces.append(Work(cursor, event.end_s, chain, event.start_s))
    return pieces


def top_level_ops(events: Sequence[HostEvent]) -> list[HostEvent]:
    """Ops with no op around them: one per call from Python into the framework."""
    return [event for event, _, _, under_op in nest(events) if event.is_op and not under_op]


def device_work(host: Sequence[HostEvent], launches: Sequence[Launch], spans: Sequence[DeviceSpan]) -> tuple[list[Work], list[Launch]]:
    """Device spans with the host chain of their launch; and the graph launches no span came from.

    A kernel's host time is its launch's, so a kernel that runs late still belongs to the phase
    that launched it. A kernel with no matching launch keeps its own start as host time."""
    by_correlation = {launch.correlation: launch for launch in launches}
    seen: set[int] = set()
    work = []
    matched = [by_correlation.get(span.correlation) if span.correlation is not None else None for span in spans]
    chains = chains_at(host, [launch.start_s if launch else 0.0 for launch in matched])
    for span, launch, chain in zip(spans, matched, chains, strict=True):
        if launch is None:
            work.append(Work(span.start_s, span.end_s, (span.name,), span.start_s, span.kind))
            continue
        seen.add(launch.correlation)
        work.append(Work(span.start_s, span.end_s, chain + (span.name,), launch.start_s, span.kind))
    unresolved = [launch for launch in launches if launch.is_graph and launch.correlation not in seen]
    return work, unresolved


def phase_windows(ranges: Sequence[PhaseRange], work: Sequence[Work]) -> dict[str, tuple[float, float]]:
    """Each phase's windows (interval_windows) as one hull: its first window's start to its last's end."""
    return {name: (found[0][0], found[-1][1]) for name, found in interval_windows(ranges, work).items()}


def phase_stats(
    ranges: Sequence[PhaseRange],
    work: Sequence[Work],
    classify: Callable[[str, tuple[str, ...]], Hashable],
    count_kernel: Callable[[Work], bool] = lambda w: w.kind in ("op", "kernel"),
    unresolved_graph_launches: Sequence[Launch] = (),
) -> dict[str, PhaseStats]:
    """Per phase: busy time over its windows, seconds per key of classify(phase, chain), work
    items launched (count_kernel decides which count), and whether the phase is reliable."""
    windows = interval_windows(ranges, work)
    out = {}
    for phase in ranges:
        # Each piece of work counts in the window of the interval that launched it (classified once).
        per_window: list[list] = [[] for _ in windows[phase.phase]]
        mine = []
        for w in work:
            index = phase.interval_of(w.host_s)
            if index is not None:
                mine.append(w)
                per_window[index].append((w.start_s, w.end_s, classify(phase.phase, w.chain)))
        busy, shares = 0.0, Counter[Hashable]()
        for window, spans in zip(windows[phase.phase], per_window, strict=True):
            window_busy, window_shares = sweep(spans, window)
            busy += window_busy
            shares.update(window_shares)
        lost = [launch for launch in unresolved_graph_launches if phase.holds(launch.start_s)]
        stats = PhaseStats((windows[phase.phase][0][0], windows[phase.phase][-1][1]), busy, dict(shares),
                           sum(1 for w in mine if count_kernel(w)), phase.tokens, windows_s=windows[phase.phase])
        if lost:
            # The device ran graph kernels the trace does not show: calling that time idle would lie.
            stats.reliable = False
            stats.notes.append(f"{len(lost)} CUDA graph launch(es) without their kernels in the trace")
        out[phase.phase] = stats
    return out
