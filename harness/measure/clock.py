"""Clocks that return raw timestamps only; statistics live in harness.analyse.stats.

CPU: time.perf_counter at each mark. CUDA: one event per mark, recorded on the stream and
read after a single synchronize at the end, so the GPU is never stalled per token.
"""

from __future__ import annotations

import time

import torch


class CpuClock:
    def __init__(self, max_marks: int) -> None:
        self._marks = [0.0] * (max_marks + 1)
        self._count = 0

    def start(self) -> None:
        self._count = 0
        self._marks[0] = time.perf_counter()

    def mark(self) -> None:
        self._count += 1
        self._marks[self._count] = time.perf_counter()

    def elapsed_s(self) -> list[float]:
        """Seconds from start to each mark."""
        origin = self._marks[0]
        return [stamp - origin for stamp in self._marks[1 : self._count + 1]]


class CudaClock:
    def __init__(self, max_marks: int) -> None:
        self._events = [torch.cuda.Event(enable_timing=True) for _ in range(max_marks + 1)]
        self._count = 0

    def start(self) -> None:
        torch.cuda.synchronize()  # the edge: nothing earlier leaks into the first sample
        self._count = 0
        self._events[0].record()

    def mark(self) -> None:
        self._count += 1
        self._events[self._count].record()

    def elapsed_s(self) -> list[float]:
        self._events[self._count].synchronize()
        origin = self._events[0]
        return [origin.elapsed_time(event) / 1e3 for event in self._events[1 : self._count + 1]]


CLOCKS = {"cpu": CpuClock, "cuda": CudaClock}


def make_clock(device: str, max_marks: int):
    return CLOCKS[device.split(":")[0]](max_marks)
