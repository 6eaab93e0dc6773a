"""Chrome/Perfetto trace events (torch.profiler's `export_chrome_trace`, Kineto's format) -> timeline
inputs. Pure: tested on hand-written events. Times in the file are microseconds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.measure.profile.timeline import MARK_RANGE_PREFIX, PHASE_RANGE_PREFIX, DeviceSpan, HostEvent, Launch

US = 1e-6
HOST_OPS = {"cpu_op"}
HOST_RANGES = {"user_annotation"}
LAUNCH_CATS = {"cuda_runtime", "cuda_driver"}
DEVICE_KINDS = {"kernel": "kernel", "gpu_memcpy": "memcpy", "gpu_memset": "memset"}
GRAPH_LAUNCH = "GraphLaunch"
HARNESS_RANGES = (PHASE_RANGE_PREFIX, MARK_RANGE_PREFIX)  # cudaGraphLaunch, cuGraphLaunch


@dataclass(frozen=True)
class Trace:
    host: list[HostEvent]  # ops and ranges of the thread that ran the phases
    launches: list[Launch]
    device: list[DeviceSpan]

    @property
    def on_device(self) -> bool:
        return bool(self.device or self.launches)


def _span(event: Mapping) -> tuple[float, float]:
    start = float(event["ts"]) * US
    return start, start + float(event.get("dur", 0.0)) * US


def _correlation(event: Mapping) -> int | None:
    value = event.get("args", {}).get("correlation")
    return int(value) if value is not None else None


def phase_thread(events: Sequence[Mapping]) -> tuple | None:
    """(pid, tid) of the thread that opened the first phase range or clock marker."""
    for event in events:
        if event.get("cat") in HOST_RANGES | HOST_OPS and str(event.get("name", "")).startswith(HARNESS_RANGES):
            return event.get("pid"), event.get("tid")
    return None


def parse(data: Mapping) -> Trace:
    events = [e for e in data.get("traceEvents", []) if e.get("ph") == "X"]
    thread = phase_thread(events)
    host, launches, device = [], [], []
    for event in events:
        cat = event.get("cat")
        start, end = _span(event)
        if cat in HOST_OPS or cat in HOST_RANGES:
            if (event.get("pid"), event.get("tid")) == thread:
                # A fast range (annotate.FAST_RANGE) is exported as an operator: its prefix says it is a range.
                is_op = cat in HOST_OPS and not event["name"].startswith(HARNESS_RANGES)
                host.append(HostEvent(event["name"], start, end, is_op=is_op))
        elif cat in LAUNCH_CATS and (correlation := _correlation(event)) is not None:
            launches.append(Launch(event["name"], start, correlation, is_graph=GRAPH_LAUNCH in event["name"]))
        elif cat in DEVICE_KINDS:
            device.append(DeviceSpan(event["name"], start, end, _correlation(event), DEVICE_KINDS[cat]))
    return Trace(host, launches, device)


def trace_file_name(case_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-+._" else "_" for ch in case_id) + ".json"
