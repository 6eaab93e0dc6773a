"""A pytest plugin that plants a slowdown: every `torch.nn.Linear` forward busy-waits a quarter
(PLANTED_LINEAR_FRAC) of its own time after computing. The stored-baseline gate must flag it
(exit 11) against baselines recorded without it (docs/drift.md):

  PYTHONPATH=scripts pytest suites/ --benchmark --families llama -p planted_linear

A busy-wait, not a sleep: the core stays busy, as slower code would keep it. Inside a graph that
torch.compile traces the wrapper adds nothing (a busy-wait cannot be traced, and keeping it out of
the graph would break the graph at every layer, a far larger slowdown): the plant slows the stacks
that run nn.Linear eagerly, which is every stack without compile.
"""

from __future__ import annotations

import os
import time

import torch

SLOWDOWN_FRAC = float(os.environ.get("PLANTED_LINEAR_FRAC", "0.25"))


def _busy_wait(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def plant(frac: float = SLOWDOWN_FRAC) -> None:
    """Patch nn.Linear.forward in this process (idempotent)."""
    original = torch.nn.Linear.forward
    if getattr(original, "planted", False):
        return

    def slowed(self, x):
        if torch.compiler.is_compiling():
            return original(self, x)
        started = time.perf_counter()
        out = original(self, x)
        _busy_wait(frac * (time.perf_counter() - started))
        return out

    slowed.planted = True  # type: ignore[attr-defined]
    torch.nn.Linear.forward = slowed  # type: ignore[method-assign]


def pytest_configure(config) -> None:
    plant()
    del config  # the plant is process-wide; the harness's verdicts report its effect
