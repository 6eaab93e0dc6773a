"""The thin torch.profiler adapter: profile one iteration, export its Chrome trace, summarise it.

The trace file is the single source for the analysis (the same file `--trace-dir` keeps), so
what a person opens in Perfetto is what the numbers came from.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch

from harness.measure.profile.analysis import summarize
from harness.measure.profile.trace import parse

T = TypeVar("T")


def activities(device: str) -> list:
    found = [torch.profiler.ProfilerActivity.CPU]
    if device.startswith("cuda"):
        found.append(torch.profiler.ProfilerActivity.CUDA)
    return found


def profile_iteration(run_once: Callable[[], T], device: str, trace_path: Path | None) -> tuple[dict, T]:
    """Run once under the profiler; (summary keys, the iteration's own output)."""
    # The first record_function of a process costs milliseconds (operator lookup): pay it here,
    # or the prefill range would open that much after the clock started.
    with torch.profiler.record_function("harness::warm-up"):
        pass
    with torch.profiler.profile(activities=activities(device)) as prof:
        output = run_once()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    with tempfile.TemporaryDirectory() as scratch:
        path = trace_path or Path(scratch) / "trace.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        prof.export_chrome_trace(str(path))
        data = json.loads(Path(path).read_text())
    return summarize(parse(data)), output


def hta_idle_frac(trace_file: Path) -> dict:
    """Cross-check with HolisticTraceAnalysis's temporal breakdown, where it is installed.

    HTA reads GPU traces only (docs/facts.md); its figure covers the whole trace, both phases and the
    gaps around them, so it is an upper bound to compare, not the same number."""
    try:
        from hta.trace_analysis import TraceAnalysis
    except ImportError:
        return {"status": "hta not installed"}
    try:
        with tempfile.TemporaryDirectory() as folder:  # HTA reads every trace of a folder as ranks
            (Path(folder) / Path(trace_file).name).symlink_to(Path(trace_file).resolve())
            frame = TraceAnalysis(trace_dir=folder).get_temporal_breakdown(visualize=False)
        return {"status": "ok", "idle_frac": float(frame["idle_time_pctg"].iloc[0]) / 100.0}
    except Exception as exc:  # recorded, never fatal: HTA is an optional cross-check
        return {"status": f"failed: {type(exc).__name__}: {exc}"}
