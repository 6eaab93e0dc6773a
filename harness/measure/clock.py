"""Clocks that return raw timestamps only; statistics live in harness.analyse.stats.

Every mark has a name, the part of the run that just ended ("prefill", "decode", "vocoder", ...),
so that runners read their stages back by name (`Marks`), not by position. CPU: time.perf_counter
at each mark. CUDA: one event per mark, made (and created on the device) before timing, recorded on the stream and read after
a single synchronize at the end, so the GPU is never stalled per token. Names go into a list
allocated with the stamps: a mark costs its timestamp (or event record) and one list store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Marks:
    """One run's marks in the order they were taken: names[i] was marked seconds[i] after start."""

    names: tuple[str, ...]
    seconds: tuple[float, ...]

    def of(self, *names: str) -> list[float]:
        """Seconds from start to each mark of these names, in order."""
        return [seconds for name, seconds in zip(self.names, self.seconds, strict=False) if name in names]

    def spans(self) -> Iterator[tuple[str, float]]:
        """Each mark's name and the seconds since the mark before it (the first mark: since start)."""
        previous = 0.0
        for name, seconds in zip(self.names, self.seconds, strict=False):
            yield name, seconds - previous
            previous = seconds


class _Clock:
    """What both clocks share: a name per mark, in a list made with the clock, read back with the seconds."""

    def __init__(self, max_marks: int) -> None:
        self._names = [""] * (max_marks + 1)
        self._count = 0

    def elapsed_s(self) -> list[float]:
        raise NotImplementedError

    def marks(self) -> Marks:
        return Marks(tuple(self._names[1 : self._count + 1]), tuple(self.elapsed_s()))


class CpuClock(_Clock):
    def __init__(self, max_marks: int) -> None:
        super().__init__(max_marks)
        self._marks = [0.0] * (max_marks + 1)

    def start(self) -> None:
        self._count = 0
        self._marks[0] = time.perf_counter()

    def mark(self, name: str) -> None:
        self._count += 1
        self._marks[self._count] = time.perf_counter()
        self._names[self._count] = name

    def elapsed_s(self) -> list[float]:
        """Seconds from start to each mark."""
        origin = self._marks[0]
        return [stamp - origin for stamp in self._marks[1 : self._count + 1]]


class CudaClock(_Clock):
    def __init__(self, max_marks: int) -> None:
        super().__init__(max_marks)
        self._events = [torch.cuda.Event(enable_timing=True) for _ in range(max_marks + 1)]
        # A torch.cuda.Event becomes a CUDA event only at its first record (a cudaEventCreate on
        # the host): recorded once here, outside timing, so that no mark pays for it per token.
        for event in self._events:
            event.record()

    def start(self) -> None:
        torch.cuda.synchronize()  # the edge: nothing earlier leaks into the first sample
        self._count = 0
        self._events[0].record()

    def mark(self, name: str) -> None:
        self._count += 1
        self._events[self._count].record()
        self._names[self._count] = name

    def elapsed_s(self) -> list[float]:
        self._events[self._count].synchronize()
        origin = self._events[0]
        return [origin.elapsed_time(event) / 1e3 for event in self._events[1 : self._count + 1]]


CLOCKS = {"cpu": CpuClock, "cuda": CudaClock}


def make_clock(device: str, max_marks: int):
    """A clock for at most `max_marks` marks (its stamps or events are all made here, before timing)."""
    return CLOCKS[device.split(":")[0]](max_marks)
