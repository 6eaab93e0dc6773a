"""Peak memory over a window: the device allocator's peak on CUDA, peak RSS growth on CPU."""

from __future__ import annotations

import resource
from pathlib import Path

import torch

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")
RESET_PEAK_RSS = b"5"  # Linux: writing 5 resets the process's peak RSS (VmHWM)


def _status_kib(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class CudaPeak:
    method = "cuda_max_memory_allocated"

    def __init__(self, device: str) -> None:
        self.device = device

    def start(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)

    def peak_bytes(self) -> int:
        return int(torch.cuda.max_memory_allocated(self.device))


class CpuPeak:
    """Peak RSS during the window minus RSS at its start (weights loaded earlier not counted)."""

    def __init__(self, device: str) -> None:
        self.method = "rss_hwm_delta"
        self._start_kib = 0

    def start(self) -> None:
        try:
            CLEAR_REFS.write_bytes(RESET_PEAK_RSS)
            self._start_kib = _status_kib("VmRSS")
        except OSError:
            # Without clear_refs the high-water mark cannot be reset: a lower bound only.
            self.method = "ru_maxrss_delta"
            self._start_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def peak_bytes(self) -> int:
        peak_kib = _status_kib("VmHWM") if self.method == "rss_hwm_delta" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return max(0, peak_kib - self._start_kib) * 1024


PEAKS = {"cpu": CpuPeak, "cuda": CudaPeak}


def make_peak(device: str):
    return PEAKS[device.split(":")[0]](device)
