"""Machine-speed probe: a fixed host workload timed next to every case's timed iterations.

Why: on shared CPU machines run-to-run drift of 10-20% moves every case together (docs/facts.md).
The probe runs none of the harness's or the model's code, so dividing by its ratio removes the
machine's drift without hiding a regression in the code under test.
"""

from __future__ import annotations

import time

import torch

PROBE_WIDTH = 128
PROBE_STEPS = 300  # ~3 ms on a 2-core CPU: per-op overhead dominated, like small-batch decode
PROBE_REPEATS = 5


def _probe_weights() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    scale = PROBE_WIDTH**-0.5
    return (
        torch.randn(PROBE_WIDTH, PROBE_WIDTH, generator=generator) * scale,
        torch.randn(PROBE_WIDTH, 2 * PROBE_WIDTH, generator=generator) * scale,
    )


@torch.no_grad()
def probe_s(repeats: int = PROBE_REPEATS) -> list[float]:
    """Raw seconds of `repeats` runs of the fixed workload."""
    square, wide = _probe_weights()
    samples = []
    for _ in range(repeats):
        x = torch.ones(1, PROBE_WIDTH)
        started = time.perf_counter()
        for _ in range(PROBE_STEPS):
            x = torch.nn.functional.silu(x @ square)
            (x @ wide).softmax(-1)
        samples.append(time.perf_counter() - started)
    return samples
