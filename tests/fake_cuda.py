"""A fake of the torch.cuda calls the clock, the peak-memory reader, the fit check and the run context make, so
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
    free_bytes: int = 80 * 2**30  # mem_get_info's free and total, and the allocator's reserved bytes
    total_bytes: int = 80 * 2**30
    reserved_bytes: int = 0

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
            ("mem_get_info", lambda: (fake.free_bytes, fake.total_bytes)), ("memory_reserved", lambda: fake.reserved_bytes),
            ("is_available", True), ("device_count", 2),
        ):
            monkeypatch.setattr(torch.cuda, name, logged(name, result))
        monkeypatch.setattr(torch.cuda, "Event", Event)
        return self

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class RecordingMode:
    """A dispatch mode that runs each op and records it, so that a fake graph can replay the same ops
    on the same tensors, as a CUDA graph replays its kernels on the same memory. An op that would make
    the host wait for the device (tests/sync_guard.py's sync_kind: `.item()`, `bool(tensor)`,
    data-dependent shapes, host data, a copy across devices) fails the capture, as it does on CUDA."""

    def __new__(cls):
        from torch.utils._python_dispatch import TorchDispatchMode

        from tests.sync_guard import sync_kind

        class _Mode(TorchDispatchMode):
            def __init__(self) -> None:
                super().__init__()
                self.ops: list = []

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                kind = sync_kind(func, args, kwargs)
                if kind is not None:
                    raise AssertionError(f"host sync inside a captured step: {func} ({kind})")
                out = func(*args, **kwargs)
                self.ops.append((func, args, kwargs, out))
                return out

        return _Mode()


def _copy_into(recorded, fresh) -> None:
    if isinstance(recorded, torch.Tensor) and isinstance(fresh, torch.Tensor):
        if fresh is not recorded:
            recorded.copy_(fresh)
    elif isinstance(recorded, (tuple, list)):
        for old, new in zip(recorded, fresh, strict=True):
            _copy_into(old, new)


class FakeGraph:
    """torch.cuda.CUDAGraph on the CPU: capture records the step's ops, replay re-runs them on the
    captured tensors (inputs, cache, intermediates) and writes each result where capture left it."""

    def __init__(self) -> None:
        self.ops: list | None = None
        self.replays = 0

    def replay(self) -> None:
        assert self.ops is not None, "replay before capture"
        for func, args, kwargs, out in self.ops:
            _copy_into(out, func(*args, **kwargs))
        self.replays += 1


class _FakeCapture:
    def __init__(self, graph: FakeGraph, **kwargs) -> None:
        self.graph = graph
        self.mode = RecordingMode()

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.mode.__exit__(*exc)
        self.graph.ops = self.mode.ops


class _FakeStream:
    def wait_stream(self, other) -> None:
        pass


def install_fake_graphs(monkeypatch) -> None:
    """CUDA graphs, streams and stream contexts on the CPU, for harness.levers.cudagraphs.GraphedStep."""
    import contextlib

    monkeypatch.setattr(torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", _FakeCapture)
    monkeypatch.setattr(torch.cuda, "Stream", _FakeStream)
    monkeypatch.setattr(torch.cuda, "current_stream", _FakeStream)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
