"""This device's peaks, measured once per run: copy bandwidth and matmul throughput.

The best of a few repetitions, after one warm-up, so the figure is the device's, not a
scheduling hiccup's. On a shared machine it is still what the device gave during this run.
"""

from __future__ import annotations

import time
from functools import partial

import torch

from harness.families.models import DTYPES

# Sizes: a copy well beyond the last-level cache; a matmul large enough to saturate the device.
COPY_BYTES = {"cpu": 256 * 2**20, "cuda": 2**30}
FREE_SHARE = 8  # on a GPU holding a large model, copy at most 1/8 of the free memory (two buffers)
MATMUL_N = {"cpu": 1024, "cuda": 8192}
REPEATS = 5


BACK_TO_BACK = {"cpu": 1, "cuda": 10}  # calls per timing: a 1 GiB copy on an H200 lasts about 0.45 ms


def _host_timed(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def _event_timed(fn, calls: int) -> float:
    """Seconds per call between two CUDA events around back-to-back calls: a host timer with a
    synchronize would add the launch and sync latency (10-20 us) to a sub-millisecond copy."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / calls


TIMERS = {"cpu": _host_timed, "cuda": _event_timed}


def _best(fn, device: str) -> float:
    kind = device.split(":")[0]
    fn()
    return min(TIMERS[kind](fn, BACK_TO_BACK[kind]) for _ in range(REPEATS))


def measure_peaks(device: str, dtype: str) -> dict:
    kind = device.split(":")[0]
    n_bytes = COPY_BYTES[kind]
    if kind == "cuda":
        n_bytes = min(n_bytes, torch.cuda.mem_get_info(device)[0] // FREE_SHARE)
    source = torch.empty(n_bytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    target = torch.empty_like(source)
    # A partial, not a lambda: the buffers are freed below, and a closure over deleted names reads as a bug.
    copy_s = _best(partial(target.copy_, source), device)
    del source, target  # free the copy buffers before the matmul's
    n = MATMUL_N[kind]
    a = torch.randn(n, n, device=device).to(DTYPES[dtype])
    b = torch.randn(n, n, device=device).to(DTYPES[dtype])
    matmul_s = _best(lambda: torch.mm(a, b), device)
    return {
        "mem_bw_bytes_per_s": 2 * n_bytes / copy_s,  # read + write
        "matmul_flops_per_s": 2 * n**3 / matmul_s,
        "method": (f"best of {REPEATS} x {BACK_TO_BACK[kind]} back to back: copy of {n_bytes // 2**20} MiB "
                   f"(read + write); {dtype} matmul {n}x{n}"),
    }
