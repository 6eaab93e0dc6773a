"""Memory growth over a window: the device allocator's peak above its start on CUDA, peak RSS
growth on CPU. It is the growth part of a case's footprint (harness.measure.footprint), the same
on both devices: what the window itself held beyond what was held when it opened.

On the CPU the kernel's high-water mark (VmHWM) is exact and free, but only where it can be
reset (`/proc/self/clear_refs`); some sandboxes refuse that, or accept the write and ignore
it. There the peak comes from a thread sampling the resident size, which competes with the
measured code for the GIL and the cores.

RSS growth also depends on the heap's history: memory that earlier work freed stays resident in
malloc's free lists, and reusing it raises no RSS at all (a 64 MiB tensor measured 0 bytes after
a fragmenting run). So a CPU window starts by handing free heap pages back to the kernel
(glibc's `malloc_trim`), and the window's RSS growth is what it really touched. That costs page
faults in the code that follows, so no peak is taken over timed iterations: every device's
peak comes from an extra, untimed iteration (harness.measure.case.CaseRun.measure_peak).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from pathlib import Path

import torch

CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")
STATM = Path("/proc/self/statm")
RESET_PEAK_RSS = b"5"  # Linux: writing 5 resets the process's peak RSS (VmHWM)
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
# Right after a reset VmHWM equals VmRSS; a few pages of slack for what the probe itself touches.
RESET_SLACK_BYTES = 2 * 1024 * 1024
SAMPLE_INTERVAL_S = 0.001


def _status_bytes(field: str) -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _load_malloc_trim():
    # glibc only: musl and macOS have no malloc_trim, and there RSS growth may undercount reuse.
    try:
        return ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


MALLOC_TRIM = _load_malloc_trim()


def release_free_heap() -> None:
    """Return malloc's free pages to the kernel, so reusing them in the window counts as growth."""
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


def rss_bytes() -> int:
    return int(STATM.read_text().split()[1]) * PAGE_BYTES


def reset_hwm() -> bool:
    """Reset the process's RSS high-water mark; False where the kernel refuses or ignores it."""
    try:
        CLEAR_REFS.write_bytes(RESET_PEAK_RSS)
        return _status_bytes("VmHWM") - _status_bytes("VmRSS") <= RESET_SLACK_BYTES
    except (OSError, KeyError):
        return False


class CudaPeak:
    """The allocator's peak during the window minus what it held at the start."""

    method = "cuda_allocated_growth"

    def __init__(self, device: str) -> None:
        self.device = device

    def start(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)
        self._start_bytes = int(torch.cuda.memory_allocated(self.device))

    def peak_bytes(self) -> int:
        return max(0, int(torch.cuda.max_memory_allocated(self.device)) - self._start_bytes)


class HwmPeak:
    """Peak RSS during the window minus RSS at its start (weights loaded earlier not counted)."""

    method = "rss_hwm_delta"

    def start(self) -> None:
        release_free_heap()
        if not reset_hwm():
            raise OSError(f"cannot reset the peak RSS through {CLEAR_REFS}")
        self._start_bytes = _status_bytes("VmRSS")

    def peak_bytes(self) -> int:
        # RSS now as well: a kernel whose high-water mark lags the resident size still gives a floor.
        return max(0, _status_bytes("VmHWM") - self._start_bytes, rss_bytes() - self._start_bytes)


class SampledPeak:
    """Peak of the resident size sampled every SAMPLE_INTERVAL_S by a thread, minus its start.
    A lower bound: a spike shorter than the interval can be missed."""

    method = f"rss_sampled_{SAMPLE_INTERVAL_S * 1e3:g}ms"

    def start(self) -> None:
        release_free_heap()
        self._start_bytes = self._max_bytes = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._max_bytes = max(self._max_bytes, rss_bytes())

    def peak_bytes(self) -> int:
        self._stop.set()
        self._thread.join()
        self._max_bytes = max(self._max_bytes, rss_bytes())
        return max(0, self._max_bytes - self._start_bytes)


def cpu_peak(device: str) -> HwmPeak | SampledPeak:
    return HwmPeak() if reset_hwm() else SampledPeak()


PEAKS = {"cpu": cpu_peak, "cuda": CudaPeak}


def make_peak(device: str):
    return PEAKS[device.split(":")[0]](device)
