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


def _timed(fn, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _best(fn, device: str) -> float:
    fn()
    return min(_timed(fn, device) for _ in range(REPEATS))


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
        "method": f"best of {REPEATS}: copy of {n_bytes // 2**20} MiB (read + write); {dtype} matmul {n}x{n}",
    }
