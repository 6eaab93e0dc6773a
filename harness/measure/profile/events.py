"""The events of a profiled timeline: host operators and ranges, launches, device spans, and
the busy pieces (`Work`) the statistics sweep over (harness.measure.profile.timeline)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostEvent:
    name: str
    start_s: float
    end_s: float
    thread: int = 0
    is_op: bool = True  # False for ranges (record_function annotations)


@dataclass(frozen=True)
class Launch:
    """A host call that starts device work (cudaLaunchKernel, cudaGraphLaunch, ...)."""

    name: str
    start_s: float
    correlation: int
    thread: int = 0
    is_graph: bool = False


@dataclass(frozen=True)
class DeviceSpan:
    name: str
    start_s: float
    end_s: float
    correlation: int | None = None
    kind: str = "kernel"  # kernel | memcpy | memset


@dataclass(frozen=True)
class Work:
    """A piece of busy time with what encloses it (outermost first) and the host time it belongs to."""

    start_s: float
    end_s: float
    chain: tuple[str, ...]
    host_s: float
    kind: str = "op"  # op (host self time) | kernel | memcpy | memset
