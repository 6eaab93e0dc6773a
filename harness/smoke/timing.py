"""Smoke checks of the measuring primitives: the environment, the event clock, peak memory and the
device peaks. They run on the CPU too (a dry run), where they check the CPU's clock and peaks."""

from __future__ import annotations

import math
import statistics
import time

import torch

from harness.measure.clock import make_clock
from harness.measure.env import environment
from harness.measure.memory import make_peak
from harness.measure.profile.peaks import measure_peaks
from harness.smoke.base import Found, SmokeContext

SLEEP_S = 0.002  # a host sleep between marks: the GPU is idle, so each event span is the sleep
SLEEP_MARKS = 5
# A sleep overshoots on a busy host (never undershoots): the spans' median may be this much longer.
SLEEP_SLACK_S = 0.003
COST_MARKS = 2000  # marks timed back to back for the host cost of one mark
MARK_HOST_LIMIT_S = 50e-6  # a mark that synchronizes, or creates its event, costs far more on CUDA
PEAK_ALLOC_BYTES = {"cpu": 64 * 2**20, "cuda": 512 * 2**20}
PEAK_HOLD_S = 0.02  # keep the tensor alive so that a sampling CPU peak sees it
ENV_KEYS = ("torch", "transformers", "torchao", "device_name", "gpu_count")


def check_env(ctx: SmokeContext) -> Found:
    found = environment(ctx.device)
    missing = [key for key in ENV_KEYS if key not in found]
    one_gpu = found["gpu_count"] == 1 if ctx.on_cuda else found["gpu_count"] == 0
    figures = {key: found.get(key) for key in ENV_KEYS + ("cuda_version", "driver_version")}
    detail = f"{found['device_name']}, torch {found['torch']}, gpus {found['gpu_count']}"
    return Found(not missing and one_gpu, detail + (f"; missing {missing}" if missing else ""), figures)


def check_clock(ctx: SmokeContext) -> Found:
    """The run's clock over known host sleeps, and the host cost of one mark."""
    clock = make_clock(ctx.device, SLEEP_MARKS)
    clock.start()
    for _ in range(SLEEP_MARKS):
        time.sleep(SLEEP_S)
        clock.mark("sleep")
    spans_s = [span for _, span in clock.marks().spans()]
    costly = make_clock(ctx.device, COST_MARKS)
    costly.start()
    start = time.perf_counter()
    for _ in range(COST_MARKS):
        costly.mark("decode")
    mark_host_s = (time.perf_counter() - start) / COST_MARKS
    costly.elapsed_s()
    median_s = statistics.median(spans_s)
    passed = min(spans_s) >= 0.9 * SLEEP_S and median_s <= SLEEP_S + SLEEP_SLACK_S and mark_host_s < MARK_HOST_LIMIT_S
    figures = {"sleep_s": SLEEP_S, "spans_s": spans_s, "mark_host_s": mark_host_s}
    return Found(passed, f"{SLEEP_S * 1e3:g} ms sleeps read {median_s * 1e3:.3f} ms (median); a mark costs "
                 f"{mark_host_s * 1e6:.1f} us on the host", figures)


def check_gpu_sleep(ctx: SmokeContext) -> Found:
    """Events time GPU work, not host time: a calibrated torch.cuda._sleep reads its length, while
    the host returns from the mark at once (a mark that synchronized would wait for it)."""
    cycles = 10_000_000
    probe = make_clock(ctx.device, 1)
    probe.start()
    torch.cuda._sleep(cycles)
    probe.mark("sleep")
    cycles_per_s = cycles / probe.elapsed_s()[0]
    target_s = 0.02
    clock = make_clock(ctx.device, 1)
    clock.start()
    torch.cuda._sleep(int(cycles_per_s * target_s))
    start = time.perf_counter()
    clock.mark("sleep")
    host_s = time.perf_counter() - start
    span_s = clock.elapsed_s()[0]
    passed = abs(span_s - target_s) <= 0.2 * target_s and host_s < 0.1 * target_s
    return Found(passed, f"a {target_s * 1e3:g} ms GPU sleep read {span_s * 1e3:.2f} ms; the mark returned after "
                 f"{host_s * 1e6:.0f} us", {"target_s": target_s, "span_s": span_s, "mark_host_s": host_s,
                                             "cycles_per_s": cycles_per_s})


def check_peak_memory(ctx: SmokeContext) -> Found:
    """The run's peak-memory method sees a known allocation as the window's growth, whatever was
    allocated before the window."""
    size_bytes = PEAK_ALLOC_BYTES[ctx.device.split(":")[0]]
    peak = make_peak(ctx.device)
    peak.start()
    held = torch.ones(size_bytes // 4, dtype=torch.float32, device=ctx.device)
    time.sleep(PEAK_HOLD_S)
    seen_bytes = peak.peak_bytes()
    del held
    passed = 0.9 * size_bytes <= seen_bytes <= 2 * size_bytes
    figures = {"method": peak.method, "allocated_bytes": size_bytes, "peak_bytes": seen_bytes}
    return Found(passed, f"{peak.method}: {seen_bytes / 2**20:.1f} MiB seen for {size_bytes / 2**20:.0f} MiB", figures)


# Floors well under any device this harness targets: a figure below is a broken timer, not a slow device.
PEAK_FLOORS = {"cpu": (1e8, 1e8), "cuda": (1e11, 1e12)}  # (bytes/s, flop/s)


def check_device_peaks(ctx: SmokeContext) -> Found:
    found = measure_peaks(ctx.device, ctx.dtype)
    bw_floor, flops_floor = PEAK_FLOORS[ctx.device.split(":")[0]]
    bandwidth, flops = found["mem_bw_bytes_per_s"], found["matmul_flops_per_s"]
    passed = all(math.isfinite(v) for v in (bandwidth, flops)) and bandwidth > bw_floor and flops > flops_floor
    return Found(passed, f"{bandwidth / 1e9:.0f} GB/s copy, {flops / 1e9:.0f} GFLOP/s {ctx.dtype} matmul", found)
