"""A fake of the torch.cuda calls the clock, the peak-memory reader and the run context make, so
their CUDA paths run on the CPU: events stamp perf_counter when recorded, and every call is logged."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch


@dataclass
class FakeCuda:
    calls: list = field(default_factory=list)  # (name, args) of every call, in order
    events: list = field(default_factory=list)
    peak_bytes: int = 0
    allocated_bytes: int = 0

    def install(self, monkeypatch) -> FakeCuda:
        fake = self

        class Event:
            def __init__(self, enable_timing: bool = False) -> None:
                self.stamp_s: float | None = None
                self.created = False  # a real event becomes a CUDA event at its first record
                fake.events.append(self)

            def record(self, stream=None) -> None:
                fake.calls.append(("create" if not self.created else "record", ()))
                self.created = True
                self.stamp_s = time.perf_counter()

            def synchronize(self) -> None:
                fake.calls.append(("event_synchronize", ()))

            def elapsed_time(self, other) -> float:
                return (other.stamp_s - self.stamp_s) * 1e3  # milliseconds, as CUDA's

        def logged(name, result=None):
            return lambda *args, **kwargs: (fake.calls.append((name, args)), result() if callable(result) else result)[1]

        for name, result in (
            ("synchronize", None), ("set_device", None), ("reset_peak_memory_stats", None),
            ("max_memory_allocated", lambda: fake.peak_bytes), ("memory_allocated", lambda: fake.allocated_bytes),
            ("is_available", True), ("device_count", 2),
        ):
            monkeypatch.setattr(torch.cuda, name, logged(name, result))
        monkeypatch.setattr(torch.cuda, "Event", Event)
        return self

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]
